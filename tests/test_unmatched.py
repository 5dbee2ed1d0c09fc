"""The unmatched sales inbox: suggestions, attribution by hand, assisted sales, the page."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rewards.attribution import unmatched as inbox
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.models import AuditEntry, Conversion, Customer, Program, Referral, Reward, Signup
from rewards.policies.versions import publish

from .conftest import csrf_token

POLICY = {"currency": "usd", "hold_days": 0, "referrer": {"fixed": 1000}}


def customer(api, external_id, email, name=None) -> str:
    answer = api.post("/customers", {"external_id": external_id, "email": email,
                                     "name": name or external_id.title()})
    assert answer.status_code in (200, 201), answer.json
    return answer.json["referral_code"]


def signup(api, external_id, email, code, name=None):
    body = {"email": email, "external_id": external_id, "referral_code": code}
    if name:
        body["name"] = name
    answer = api.post("/signups", body)
    assert answer.status_code == 201 and answer.json["attributed"], answer.json


def buy(api, external_id, order_id, amount=5000) -> int:
    answer = api.post("/conversions", {"order_id": order_id, "external_id": external_id,
                                       "amount": amount, "currency": "usd"})
    assert answer.status_code == 201, answer.json
    return answer.json["conversion_id"]


def age_signups(app, hours=48):
    with app.app_context():
        for row in db.session.scalars(select(Signup)):
            row.created_at = row.created_at - timedelta(hours=hours)
        db.session.commit()


@pytest.fixture
def world(app, api):
    """Ana (code) referred Maria Lopez <maria@acme.io>; Maria buys again as M. Lopez
    <m.lopez@acme.io>, a new customer, so nothing matches."""
    code = customer(api, "ana", "ana@example.com", "Ana Silva")
    signup(api, "maria", "maria@acme.io", code, name="Maria Lopez")
    customer(api, "bob", "bob@example.com", "Bob Stone")
    customer(api, "mlopez", "m.lopez@acme.io", "Maria Lopes")
    return {"code": code}


def ids(app):
    with app.app_context():
        return {c.external_id: c.id for c in db.session.scalars(select(Customer))}


def test_lists_unmatched_with_reason_newest_first(app, api, world):
    first = buy(api, "bob", "o-1")
    second = buy(api, "mlopez", "o-2")
    buy(api, "maria", "o-3")  # referred: matched
    with app.app_context():
        rows = inbox.unmatched()
        assert [c.id for c in rows] == [second, first]
        assert all(c.reason.startswith("Not attributed") for c in rows)
        assert inbox.count_unmatched() == 2


def test_suggests_by_domain_and_similar_name(app, api, world):
    age_signups(app)  # the signup is not recent: only the domain rule can match
    conversion_id = buy(api, "mlopez", "o-1")
    with app.app_context():
        found = inbox.suggestions(db.session.get(Conversion, conversion_id))
        assert [(s.friend.external_id, s.referrer.external_id) for s in found] == [
            ("maria", "ana")]
        assert "acme.io" in found[0].reason and "similar name" in found[0].reason


def test_no_domain_suggestion_for_dissimilar_names_or_webmail(app, api, world):
    age_signups(app)
    customer(api, "zed", "zed.quinn@acme.io", "Zed Quinn")
    code = customer(api, "carl", "carl@example.com")
    signup(api, "gina", "gina.moss@gmail.com", code, name="Gina Moss")
    customer(api, "gina2", "gina.mos@gmail.com", "Gina Mos")
    age_signups(app)
    zed = buy(api, "zed", "o-z")
    gina2 = buy(api, "gina2", "o-g")
    with app.app_context():
        assert inbox.suggestions(db.session.get(Conversion, zed)) == []
        assert inbox.suggestions(db.session.get(Conversion, gina2)) == []


def test_suggests_signups_in_the_hours_before(app, api, world):
    conversion_id = buy(api, "bob", "o-1")  # Maria signed up just now, before the purchase
    with app.app_context():
        found = inbox.suggestions(db.session.get(Conversion, conversion_id))
        assert [s.friend.external_id for s in found] == ["maria"]
        assert "before the purchase" in found[0].reason
        assert found[0].referrer.external_id == "ana"
    age_signups(app, hours=7)
    with app.app_context():
        assert inbox.suggestions(db.session.get(Conversion, conversion_id)) == []


def test_attribute_by_hand_rewards_and_audits(app, api, world, make_user, program):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    conversion_id = buy(api, "bob", "o-1")
    people = ids(app)
    with app.app_context():
        from rewards.models import Account

        account = db.session.scalar(select(Account).filter_by(
            email=make_user("coordinator")))
        ana = db.session.get(Customer, people["ana"])
        done = inbox.attribute_by_hand(conversion_id, referrer=ana,
                                       note="Told us at the till", account=account)
        assert done.referrer_id == ana.id and done.matched_by == "staff"
        assert done.matched_via == "staff"
        assert done.reason == "Attributed by staff: Told us at the till"
        assert done.processed_at is not None  # the rewards ran (inline jobs)
        referral = db.session.scalar(select(Referral).filter_by(friend_id=people["bob"]))
        assert referral.referrer_id == ana.id and referral.matched_by == "staff"
        rewards = db.session.scalars(select(Reward).filter_by(
            conversion_id=conversion_id)).all()
        assert [(r.customer_id, r.amount, r.role) for r in rewards] == [
            (ana.id, 1000, "referrer")]
        entry = db.session.scalar(select(AuditEntry).filter_by(action="attribute_by_hand"))
        assert entry.subject == f"conversion:{conversion_id}"
        assert entry.note == "Told us at the till" and entry.account_id == account.id
        assert '"referrer_id": null' in entry.before
        assert f'"referrer_id": {ana.id}' in entry.after
    assert api.get("/conversions/o-1").json["rewards"][0]["amount"] == 1000


def test_refuses_self_referral_double_attribution_and_no_note(app, api, world):
    conversion_id = buy(api, "bob", "o-1")
    people = ids(app)
    with app.app_context():
        bob = db.session.get(Customer, people["bob"])
        ana = db.session.get(Customer, people["ana"])
        with pytest.raises(Conflict):
            inbox.attribute_by_hand(conversion_id, referrer=bob, note="x", account=None)
        db.session.rollback()
        with pytest.raises(ServiceError):
            inbox.attribute_by_hand(conversion_id, referrer=ana, note="  ", account=None)
        db.session.rollback()
        inbox.attribute_by_hand(conversion_id, referrer=ana, note="first", account=None)
        carl = db.session.get(Customer, people["mlopez"])
        with pytest.raises(Conflict):
            inbox.attribute_by_hand(conversion_id, referrer=carl, note="second",
                                    account=None)
        db.session.rollback()
        assert db.session.get(Conversion, conversion_id).referrer_id == ana.id
        assert db.session.scalar(select(AuditEntry).filter_by(
            action="attribute_by_hand").order_by(AuditEntry.id.desc())).note == "first"


def test_refuses_a_buyer_referred_by_someone_else(app, api, world):
    conversion_id = buy(api, "maria", "o-1")
    people = ids(app)
    with app.app_context():
        # Unattributed by hand in the database, as if the chain had missed it.
        db.session.execute(update(Conversion).values(referrer_id=None, referral_id=None))
        db.session.commit()
        bob = db.session.get(Customer, people["bob"])
        with pytest.raises(Conflict, match="referred once"):
            inbox.attribute_by_hand(conversion_id, referrer=bob, note="n", account=None)


def test_find_referrer_by_code_and_by_name(app, api, world, program):
    people = ids(app)
    with app.app_context():
        shop = db.session.get(Program, program)
        assert inbox.find_referrer(shop, world["code"].lower()).id == people["ana"]
        assert inbox.find_referrer(shop, " ana silva ").id == people["ana"]
        assert inbox.find_referrer(shop, "bob@example").id == people["bob"]
        with pytest.raises(ServiceError, match="Several customers match") as several:
            inbox.find_referrer(shop, "maria lop")
        assert several.value.code == "ambiguous"
        with pytest.raises(NotFound):
            inbox.find_referrer(shop, "nobody-at-all")


def unmatched_page(client) -> str:
    response = client.get("/coordinator/unmatched")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_page_lists_masks_and_attributes_a_suggestion(app, api, world, as_role, program):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    age_signups(app)
    conversion_id = buy(api, "mlopez", "o-1")
    people = ids(app)
    coordinator = as_role("coordinator")
    html = unmatched_page(coordinator)
    assert "Unmatched sales" in html and "o-1" in html
    assert "Not attributed" in html
    assert "m***@acme.io" in html and "m.lopez@acme.io" not in html
    assert "maria@acme.io" not in html and "ana@example.com" not in html
    assert "Attribute to Ana Silva" in html
    token = csrf_token(coordinator, "/coordinator/unmatched")
    answer = coordinator.post(f"/coordinator/unmatched/{conversion_id}/attribute",
                              data={"csrf_token": token, "referrer_id": people["ana"],
                                    "note": "Same person, new email"})
    assert answer.status_code == 302
    page = coordinator.get(answer.headers["Location"]).get_data(as_text=True)
    assert "now attributed to Ana Silva" in page
    assert 'data-testid="unmatched-row"' not in page
    with app.app_context():
        assert db.session.scalar(select(Reward.amount).filter_by(
            conversion_id=conversion_id)) == 1000


def test_page_assisted_sale_by_code_and_name(app, api, world, as_role):
    first = buy(api, "bob", "o-1")
    second = buy(api, "mlopez", "o-2")
    people = ids(app)
    coordinator = as_role("coordinator")
    token = csrf_token(coordinator, "/coordinator/unmatched")
    url = "/coordinator/unmatched/{}/attribute"
    coordinator.post(url.format(first), data={"csrf_token": token, "note": "Phone order",
                                              "referrer": world["code"].lower()})
    ambiguous = coordinator.post(url.format(second), data={
        "csrf_token": token, "note": "In store", "referrer": "maria"}, follow_redirects=True)
    assert "Several customers match" in ambiguous.get_data(as_text=True)
    coordinator.post(url.format(second), data={"csrf_token": token, "note": "In store",
                                               "referrer": "Bob Stone"})
    with app.app_context():
        assert db.session.get(Conversion, first).referrer_id == people["ana"]
        assert db.session.get(Conversion, second).referrer_id == people["bob"]


def test_page_refuses_without_csrf_and_for_other_roles(app, api, world, as_role):
    conversion_id = buy(api, "bob", "o-1")
    coordinator = as_role("coordinator")
    unmatched_page(coordinator)
    refused = coordinator.post(f"/coordinator/unmatched/{conversion_id}/attribute",
                               data={"referrer": "ana", "note": "n"})
    assert refused.status_code == 400
    for role in ("admin", "marketing", "customer"):
        assert as_role(role).get("/coordinator/unmatched").status_code == 403
    assert re.search(r'href="/coordinator/unmatched"', unmatched_page(coordinator))
