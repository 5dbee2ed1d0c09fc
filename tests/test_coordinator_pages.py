"""The coordinator's pages: the payout queue, one payout's evidence, batch actions,
maker-checker, manual payment, CSV exports and the audit log."""

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from rewards.extensions import db
from rewards.models import (
    Account,
    AuditEntry,
    Click,
    Customer,
    FraudSignal,
    Payout,
    Program,
    Referral,
    Reward,
    utcnow,
)
from rewards.payouts import proposals
from rewards.policies.versions import publish

from .conftest import csrf_token, login

POLICY = {"currency": "usd", "hold_days": 0, "referrer": {"fixed": 1000}}


def text_of(response) -> str:
    return response.get_data(as_text=True)


def row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-payout-id="(\d+)"', html)]


def refer(api, referrer: str, friends: list[tuple[str, str]], *, email=None, name=None):
    """The referrer (created if new) refers each (friend external id, email), who buys."""
    code = api.post("/customers", {"external_id": referrer, "name": name or referrer.title(),
                                   "email": email or f"{referrer}@example.com"}).json[
        "referral_code"]
    for friend, friend_email in friends:
        assert api.post("/signups", {"email": friend_email, "external_id": friend,
                                     "referral_code": code}).status_code == 201
        assert api.post("/conversions", {"order_id": f"order-{friend}", "external_id": friend,
                                         "amount": 5000, "currency": "usd"}).status_code == 201


def propose(app) -> list[int]:
    with app.app_context():
        program = db.session.scalar(select(Program))
        return [p.id for p in proposals.propose(program)]


def payout_of(app, external_id: str) -> Payout:
    with app.app_context():
        row = db.session.scalar(select(Payout).join(Customer).where(
            Customer.external_id == external_id).order_by(Payout.id.desc()))
        db.session.expunge(row)
        return row


@pytest.fixture
def queue(app, api, program):
    """Maria earned $20.00 from Fiona and Gus; Ben earned $10.00 from Hana; Maria's third
    friend signed up with a disposable email, so that reward waits on hold, flagged.
    Both payouts are proposed (manual method)."""
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    refer(api, "maria", [("fiona", "fiona@example.com"), ("gus", "gus@example.com"),
                         ("ivy", "ivy@mailinator.com")],
          email="maria.lopez@example.com", name="Maria Lopez")
    refer(api, "ben", [("hana", "hana@example.com")], name="Ben Okafor")
    ids = propose(app)
    assert len(ids) == 2
    return {"maria": payout_of(app, "maria").id, "ben": payout_of(app, "ben").id}


@pytest.fixture
def coordinator(app, make_user):
    """A signed-in coordinator client, with its email as `.email`."""
    client = app.test_client()
    email = make_user("coordinator", name="Cora Coordinator")
    assert login(client, email).status_code == 302
    client.email = email
    return client


def post_form(client, page: str, path: str, data: dict | list):
    """POST a form of `page` (its CSRF token), following the redirect."""
    token = csrf_token(client, page)
    if isinstance(data, dict):
        data = list(data.items())
    return client.post(path, data=MultiDict([*data, ("csrf_token", token)]),
                       follow_redirects=True)


def batch(client, action: str, ids: list[int], **fields):
    data = [("action", action), *[("payout_id", str(i)) for i in ids], *fields.items()]
    return post_form(client, "/coordinator/payouts", "/coordinator/payouts/batch", data)


# ---- The queue ---------------------------------------------------------------------


def test_the_queue_shows_referrer_amount_method_status_and_flags(app, queue, coordinator):
    page = text_of(coordinator.get("/coordinator/payouts"))
    assert row_ids(page) == sorted(queue.values())  # oldest first
    assert "Maria" in page and "m***@example.com" in page
    assert "maria.lopez@example.com" not in page
    assert "$20.00" in page and "$10.00" in page
    assert "Manual" in page and "Awaiting approval" in page
    # Ivy's reward is on hold, out of the payout, and its signal is shown in words.
    assert "Flagged · 1" in page
    assert "disposable email service" in page
    assert "1 reward held for review ($10.00), not in this payout" in page
    assert 'name="csrf_token"' in page and 'data-select-all="payout_id"' in page


def test_the_queue_filters(app, queue, coordinator):
    def ids(query):
        response = coordinator.get(f"/coordinator/payouts?{query}")
        assert response.status_code == 200
        return row_ids(text_of(response))

    assert ids("min=15") == [queue["maria"]]
    assert ids("max=15") == [queue["ben"]]
    assert ids("min=10&max=10.00") == [queue["ben"]]
    assert ids("min=10.01&max=19.99") == []
    assert ids("flagged=1") == [queue["maria"]]
    assert ids("status=paid") == []
    assert ids("status=awaiting_approval&method=manual") == sorted(queue.values())
    assert ids("method=connect") == []
    with app.app_context():
        program_id = db.session.scalar(select(Program.id))
    assert ids(f"program={program_id}") == sorted(queue.values())
    assert ids(f"program={program_id + 1}") == []
    page = text_of(coordinator.get("/coordinator/payouts?min=lots&status=nope"))
    assert "The minimum amount must be a number" in page
    assert "Unknown status" in page
    assert row_ids(page) == sorted(queue.values())


def test_rejected_payouts_leave_the_default_view(app, queue, coordinator):
    batch(coordinator, "reject", [queue["ben"]], reason="Test account",
          rewards_to="available")
    assert row_ids(text_of(coordinator.get("/coordinator/payouts"))) == [queue["maria"]]
    assert row_ids(text_of(coordinator.get("/coordinator/payouts?status=rejected"))) == [
        queue["ben"]]
    assert row_ids(text_of(coordinator.get("/coordinator/payouts?status=all"))) == [
        queue["ben"], queue["maria"]]  # history newest first


# ---- One payout --------------------------------------------------------------------


def test_the_detail_shows_explanations_and_masked_evidence(app, queue, coordinator):
    with app.app_context():
        referral = db.session.scalar(select(Referral).join(
            Customer, Customer.id == Referral.friend_id).where(Customer.external_id == "fiona"))
        click = Click(uid="c" * 32, program_id=referral.program_id, code_id=referral.code_id,
                      referrer_id=referral.referrer_id, visitor_id="v" * 32,
                      referrer_host="news.example", channel="email",
                      created_at=utcnow() - timedelta(hours=2))
        db.session.add(click)
        db.session.flush()
        referral.click_id = click.id
        db.session.commit()
    page = text_of(coordinator.get(f"/coordinator/payouts/{queue['maria']}"))
    assert f"Payout #{queue['maria']}" in page
    assert page.count('data-testid="explanation"') == 3  # two inside, one held
    assert "A fixed $10.00" in page
    assert "policy v1" in page
    for order in ("order-fiona", "order-gus", "order-ivy"):
        assert order in page
    assert "f***@example.com" in page and "g***@example.com" in page
    assert "i***@mailinator.com" in page
    for email in ("fiona@example.com", "gus@example.com", "ivy@mailinator.com",
                  "maria.lopez@example.com"):
        assert email not in page
    assert "news.example" in page and "channel email" in page  # the click
    assert "Referral code" in page  # how the signup was attributed
    assert "Held for review, not in this payout" in page
    assert "Disposable email" in page and "disposable email service" in page
    assert 'data-testid="clear-signal"' in page
    assert "$20.00" in page  # gross and sent
    assert coordinator.get("/coordinator/payouts/999999").status_code == 404


def test_a_payout_that_needs_attention_shows_why_and_can_be_retried(app, queue, coordinator):
    with app.app_context():
        db.session.execute(update(Payout).where(Payout.id == queue["ben"]).values(
            status="needs_attention",
            failure_reason="The destination account cannot receive transfers."))
        db.session.commit()
    detail = f"/coordinator/payouts/{queue['ben']}"
    page = text_of(coordinator.get(detail))
    assert "This payout needs attention." in page
    assert "The destination account cannot receive transfers." in page
    queue_page = text_of(coordinator.get("/coordinator/payouts?status=needs_attention"))
    assert "cannot receive transfers" in queue_page
    retried = text_of(post_form(coordinator, detail, f"{detail}/retry", {}))
    assert f"Retried #{queue['ben']}" in retried
    assert payout_of(app, "ben").status == "approved"  # manual: waits for a reference


# ---- Actions -----------------------------------------------------------------------


def test_batch_approve(app, queue, coordinator):
    page = text_of(batch(coordinator, "approve", [queue["maria"], queue["ben"]]))
    assert f"Approved #{queue['maria']}" in page and f"Approved #{queue['ben']}" in page
    assert payout_of(app, "maria").status == "approved"
    assert payout_of(app, "ben").status == "approved"
    again = text_of(batch(coordinator, "approve", [queue["ben"]]))
    assert f"#{queue['ben']}: Payout #{queue['ben']} is approved, not awaiting approval." in again
    nothing = text_of(batch(coordinator, "approve", []))
    assert "Select at least one payout first." in nothing


def test_batch_reject_needs_a_reason_and_applies_the_choice(app, queue, coordinator):
    both = [queue["maria"], queue["ben"]]
    page = text_of(batch(coordinator, "reject", both, reason=" ", rewards_to="rejected"))
    assert page.count("Give a reason for the rejection.") == 1  # once, not per payout
    page = text_of(batch(coordinator, "reject", both, reason="Duplicate accounts"))
    assert "Choose whether the rewards go back to available or are rejected." in page
    assert {payout_of(app, "maria").status, payout_of(app, "ben").status} == {
        "awaiting_approval"}

    page = text_of(batch(coordinator, "reject", [queue["maria"]], reason="Duplicate accounts",
                         rewards_to="rejected"))
    assert f"Rejected #{queue['maria']}: its rewards are rejected for good." in page
    page = text_of(batch(coordinator, "reject", [queue["ben"]], reason="Wrong bank details",
                         rewards_to="available"))
    assert f"Rejected #{queue['ben']}: its rewards are available again." in page
    with app.app_context():
        statuses = dict(db.session.execute(
            select(Customer.external_id, Reward.status).join(
                Customer, Customer.id == Reward.customer_id)
            .where(Reward.status != "on_hold")).all())
        reasons = set(db.session.scalars(select(Payout.rejection_reason)))
    assert statuses == {"maria": "rejected", "ben": "available"}
    assert reasons == {"Duplicate accounts", "Wrong bank details"}


def test_maker_checker_refuses_the_same_person_twice(app, queue, coordinator, make_user):
    with app.app_context():
        db.session.execute(update(Payout).where(Payout.id == queue["maria"])
                           .values(needs_two_approvals=True))
        db.session.commit()
    maria = queue["maria"]
    detail = f"/coordinator/payouts/{maria}"
    page = text_of(coordinator.get("/coordinator/payouts"))
    assert "0 of 2" in page
    first = text_of(post_form(coordinator, detail, f"{detail}/approve", {}))
    assert f"Approved #{maria} (1 of 2): a second, different coordinator must approve" in first
    assert "You have approved it" in first  # the detail no longer offers Approve to them
    again = text_of(batch(coordinator, "approve", [maria]))
    assert (f"#{maria}: You have already approved payout #{maria}; a second, different "
            "coordinator must approve it too.") in again
    assert "1 of 2" in text_of(coordinator.get("/coordinator/payouts"))
    assert payout_of(app, "maria").status == "awaiting_approval"

    checker = app.test_client()
    assert login(checker, make_user("coordinator", name="Carl Checker")).status_code == 302
    second = text_of(post_form(checker, detail, f"{detail}/approve", {}))
    assert f"Approved #{maria}: pay it outside the platform" in second
    assert payout_of(app, "maria").status == "approved"
    assert "Cora Coordinator" in second and "Carl Checker" in second  # the approvals


def test_mark_paid_with_a_reference(app, queue, coordinator):
    ben = queue["ben"]
    detail = f"/coordinator/payouts/{ben}"
    early = text_of(post_form(coordinator, detail, f"{detail}/mark-paid",
                              {"reference": "SEPA-1"}))
    assert f"#{ben}: Payout #{ben} is awaiting approval, not approved." in early
    batch(coordinator, "approve", [ben])
    assert 'data-testid="mark-paid"' in text_of(coordinator.get(detail))
    blank = text_of(post_form(coordinator, detail, f"{detail}/mark-paid", {"reference": " "}))
    assert "Give the payment reference" in blank
    paid = text_of(post_form(coordinator, detail, f"{detail}/mark-paid",
                             {"reference": "SEPA-2026-001"}))
    assert f"Marked #{ben} paid with the reference SEPA-2026-001." in paid
    row = payout_of(app, "ben")
    assert (row.status, row.reference) == ("paid", "SEPA-2026-001")
    with app.app_context():
        assert set(db.session.scalars(select(Reward.status).join(
            Customer, Customer.id == Reward.customer_id).where(
            Customer.external_id == "ben"))) == {"paid"}


def test_propose_now(app, api, program, coordinator):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    refer(api, "maria", [("fiona", "fiona@example.com")])
    refer(api, "ben", [("hana", "hana@example.com")])
    path = f"/coordinator/programs/{program}/propose"
    page = text_of(post_form(coordinator, "/coordinator/payouts", path, {}))
    assert "Proposed 2 payouts for Shop Club" in page
    assert len(row_ids(page)) == 2
    page = text_of(post_form(coordinator, "/coordinator/payouts", path, {}))
    assert "No new payouts for Shop Club" in page
    with app.app_context():
        who = db.session.scalars(select(Account.email).join(
            AuditEntry, AuditEntry.account_id == Account.id).where(
            AuditEntry.action == "propose_payout")).all()
    assert who == [coordinator.email, coordinator.email]


def test_clearing_a_signal_releases_the_held_reward(app, queue, coordinator):
    maria = queue["maria"]
    detail = f"/coordinator/payouts/{maria}"
    with app.app_context():
        signal_id = db.session.scalar(select(FraudSignal.id))
    page = text_of(post_form(coordinator, detail, f"/coordinator/signals/{signal_id}/reject",
                             [("reason", ""), ("back", detail)]))
    assert "Give a reason for the rejection." in page
    page = text_of(post_form(coordinator, detail, f"/coordinator/signals/{signal_id}/clear",
                             [("back", detail)]))
    assert f"Cleared signal #{signal_id}" in page
    assert f"Payout #{maria}" in page  # back on the payout
    assert "Held for review" not in page
    with app.app_context():
        assert db.session.get(FraudSignal, signal_id).status == "cleared"
        assert set(db.session.scalars(select(Reward.status).where(
            Reward.payout_id.is_(None)))) == {"available"}
    assert 'data-testid="flagged"' not in text_of(coordinator.get("/coordinator/payouts"))


def test_rejecting_a_signal_rejects_the_held_reward(app, queue, coordinator):
    detail = f"/coordinator/payouts/{queue['maria']}"
    with app.app_context():
        signal_id = db.session.scalar(select(FraudSignal.id))
    page = text_of(post_form(coordinator, detail, f"/coordinator/signals/{signal_id}/reject",
                             [("reason", "Throwaway address"), ("back", detail)]))
    assert f"Rejected signal #{signal_id}" in page
    with app.app_context():
        assert set(db.session.scalars(select(Reward.status).where(
            Reward.payout_id.is_(None)))) == {"rejected"}


def test_back_never_leaves_the_coordinator_area(app, queue, coordinator):
    response = coordinator.post("/coordinator/payouts/batch", data={
        "action": "approve", "payout_id": str(queue["ben"]), "back": "//evil.example/x",
        "csrf_token": csrf_token(coordinator, "/coordinator/payouts")})
    assert response.headers["Location"] == "/coordinator/payouts"


# ---- Home and navigation -----------------------------------------------------------


def test_home_leads_with_what_waits(app, queue, coordinator):
    page = text_of(coordinator.get("/coordinator"))
    assert re.search(r'data-testid="count-awaiting">2<', page)
    assert re.search(r'data-testid="count-flagged">1<', page)
    assert re.search(r'data-testid="count-attention">0<', page)
    assert "Referred purchases" in page
    assert 'href="/coordinator/payouts"' in page and 'href="/coordinator/audit"' in page


# ---- CSV ---------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(text_of(response))))


def test_payouts_csv(app, queue, coordinator):
    batch(coordinator, "approve", [queue["ben"]])
    rows = read_csv(coordinator.get("/coordinator/payouts.csv"))
    assert [r["id"] for r in rows] == [str(queue["maria"]), str(queue["ben"])]
    maria, ben = rows
    assert (maria["customer_external_id"], maria["email"], maria["amount"], maria["currency"],
            maria["method"], maria["status"]) == (
        "maria", "m***@example.com", "20.00", "USD", "manual", "awaiting_approval")
    assert ben["status"] == "approved" and ben["approved"] and not ben["paid"]
    # What the coordinator pays from: manual payouts approved and waiting.
    to_pay = read_csv(coordinator.get("/coordinator/payouts.csv?status=approved&method=manual"))
    assert [r["id"] for r in to_pay] == [str(queue["ben"])]
    assert read_csv(coordinator.get("/coordinator/payouts.csv?min=15"))[0]["id"] == str(
        queue["maria"])


def test_csv_cells_cannot_run_as_formulas(app, queue, coordinator):
    with app.app_context():
        customer = db.session.scalar(select(Customer).filter_by(external_id="maria"))
        customer.external_id = '=HYPERLINK("http://evil.example","x")'
        customer.email = "+cmd@example.com"
        db.session.commit()
    [row] = read_csv(coordinator.get("/coordinator/payouts.csv?min=15"))
    assert row["customer_external_id"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["email"] == "'+***@example.com"
    from rewards.web.downloads import safe_cell

    for risky in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(risky) == "'" + risky
    assert safe_cell("plain") == "plain" and safe_cell(None) == "" and safe_cell(12) == "12"


# ---- Audit log ---------------------------------------------------------------------


def test_audit_page_lists_and_filters(app, queue, coordinator, make_user):
    batch(coordinator, "approve", [queue["ben"]])
    other = app.test_client()
    dora = make_user("coordinator", email="dora@example.com", name="Dora")
    assert login(other, dora).status_code == 302
    batch(other, "reject", [queue["maria"]], reason="Looks duplicated", rewards_to="available")

    page = text_of(coordinator.get("/coordinator/audit"))
    actions = re.findall(r'data-testid="audit-action">([^<]+)<', page)
    assert actions[:2] == ["reject payout", "approve payout"]  # newest first
    assert "propose payout" in actions
    assert "<del>awaiting_approval</del> → <ins>approved</ins>" in page  # what changed
    assert "rewards available: Looks duplicated" in page

    def actions_for(query):
        html = text_of(coordinator.get(f"/coordinator/audit?{query}"))
        return re.findall(r'data-testid="audit-action">([^<]+)<', html)

    assert actions_for("action=approve_payout") == ["approve payout"]
    assert actions_for("who=dora@") == ["reject payout"]
    assert actions_for(f"subject=payout:{queue['ben']}") == ["approve payout", "propose payout"]
    assert len(actions_for("subject=payout")) == 4
    today = utcnow().date()
    assert len(actions_for(f"from={today}&to={today}")) >= 4
    future = today + timedelta(days=2)
    assert actions_for(f"from={future}") == []
    assert "The from date must look like 2026-01-31." in text_of(
        coordinator.get("/coordinator/audit?from=yesterday"))

    rows = read_csv(coordinator.get("/coordinator/audit.csv?who=dora"))
    assert [(r["who"], r["action"], r["subject"]) for r in rows] == [
        ("dora@example.com", "reject_payout", f"payout:{queue['maria']}")]
    assert '"status": "rejected"' in rows[0]["after"]


def test_pages_need_the_coordinator_role(app, queue, as_role):
    for role in ("admin", "marketing", "customer"):
        client = as_role(role)
        for path in ("/coordinator/payouts", "/coordinator/audit", "/coordinator/payouts.csv"):
            assert client.get(path).status_code == 403
    assert app.test_client().get("/coordinator/audit").status_code == 302


def test_nav_shows_payouts_and_audit_log_to_coordinators(coordinator, program):
    page = text_of(coordinator.get("/coordinator/payouts"))
    assert re.search(r'href="/coordinator/payouts"\s+aria-current="page">Payouts<', page)
    assert ">Audit log<" in page



def test_csv_downloads_are_in_the_audit_log(app, queue, coordinator):
    from rewards.models import AuditEntry

    coordinator.get("/coordinator/payouts.csv?status=proposed").get_data()
    coordinator.get("/coordinator/audit.csv").get_data()
    with app.app_context():
        entries = db.session.execute(
            select(AuditEntry.subject, AuditEntry.note).where(AuditEntry.action == "download")
            .order_by(AuditEntry.id)).all()
    assert entries == [("payouts.csv", "status=proposed"), ("audit.csv", "no filters")]
