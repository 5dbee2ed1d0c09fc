"""Fraud signals: each kind fires with its sentence, near misses do not; flagged rewards
wait on hold out of payouts until a coordinator clears or rejects them."""

import contextlib
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update

from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.attribution.signups import record_signup, register_customer
from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.fraud import emails, review
from rewards.fraud import signals as fraud
from rewards.ledger.check import check_ledger
from rewards.ledger.compute import reward_conversion
from rewards.models import (
    Account,
    AuditEntry,
    Conversion,
    Customer,
    FraudSignal,
    KnownVisitor,
    Program,
    Referral,
    Reward,
    utcnow,
)
from rewards.payouts import proposals
from rewards.people.accounts import create_account
from rewards.people.codes import primary_code
from rewards.policies.versions import publish

from .conftest import PASSWORD, csrf_token, login

POLICY = {"currency": "usd", "hold_days": 0, "purchases": "all", "referrer": {"fixed": 1000}}


@pytest.fixture
def policy(app, program):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)


@pytest.fixture
def referrer(app, api, policy):
    """ref-1 (j.doe@gmail.com) and their referral code."""
    return api.post("/customers", {"external_id": "ref-1", "email": "j.doe@gmail.com"}).json[
        "referral_code"]


def customer_id(app, external_id="ref-1") -> int:
    with app.app_context():
        return db.session.scalar(select(Customer.id).filter_by(external_id=external_id))


def sign_up(api, code, email="friend@example.com", external_id="f-1", **extra):
    response = api.post("/signups", {"email": email, "external_id": external_id,
                                     "referral_code": code} | extra)
    assert response.status_code == 201, response.json
    assert response.json["attributed"] is True, response.json
    return response.json


def buy(api, order_id="o-1", external_id="f-1", amount=10000):
    response = api.post("/conversions", {"order_id": order_id, "external_id": external_id,
                                         "amount": amount, "currency": "usd"})
    assert response.status_code == 201, response.json
    return response.json


def buy_with_card(app, program, external_id, order_id, fingerprint):
    """A purchase with a card fingerprint, as the Stripe sync would record it."""
    with app.app_context():
        data = NewConversion(order_id=order_id, amount=10000, currency="usd",
                             occurred_at=utcnow(), external_id=external_id,
                             card_fingerprint=fingerprint)
        result = record_conversion(db.session.get(Program, program), data, source="stripe",
                                   digest=request_hash({"order_id": order_id}))
        return result.conversion.id


def signals(app, kind=None) -> list[tuple[str, str]]:
    with app.app_context():
        query = select(FraudSignal).order_by(FraudSignal.id)
        if kind:
            query = query.filter_by(kind=kind)
        return [(s.kind, s.detail) for s in db.session.scalars(query)]


def statuses(app, external_id="ref-1") -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Reward.status).join(Customer, Customer.id == Reward.customer_id)
            .where(Customer.external_id == external_id).order_by(Reward.id)))


def signal_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(FraudSignal.id).order_by(FraudSignal.id)))


def coordinator(app) -> int:
    with app.app_context():
        return create_account("cora@example.com", PASSWORD, "coordinator", "Cora").id


def clear(app, signal_id, account_id):
    with app.app_context():
        return review.clear(signal_id, db.session.get(Account, account_id)).status


def reject(app, signal_id, account_id, reason="The friend is the referrer."):
    with app.app_context():
        return review.reject(signal_id, db.session.get(Account, account_id), reason).status


def propose(app, program) -> list[int]:
    with app.app_context():
        return [p.id for p in proposals.propose(db.session.get(Program, program))]


def assert_ledger_true(app):
    with app.app_context():
        assert check_ledger() == []


# --- canonical emails ---------------------------------------------------------------------

@pytest.mark.parametrize(("email", "canonical"), [
    ("J.Doe+ref@GMail.com", "jdoe@gmail.com"),
    ("jdoe@gmail.com", "jdoe@gmail.com"),
    ("j.d.o.e@googlemail.com", "jdoe@gmail.com"),
    ("Jane.Doe+shop@outlook.com", "jane.doe@outlook.com"),
    ("jane+x@hotmail.com", "jane@hotmail.com"),
    ("a.b+c@icloud.com", "a.b@icloud.com"),
    ("sam+promo@me.com", "sam@me.com"),
    ("nick-shopping@yahoo.com", "nick@yahoo.com"),
    ("kim+tag@fastmail.com", "kim@fastmail.com"),
    ("lee+tag@proton.me", "lee@proton.me"),
    ("j.doe+1@example.com", "j.doe+1@example.com"),  # unknown provider: only case folds
    ("  Mixed.Case@Example.COM ", "mixed.case@example.com"),
    ("+only@gmail.com", "+only@gmail.com"),
])
def test_canonical_email(email, canonical):
    assert emails.canonical_email(email) == canonical


def test_disposable_domains_come_from_the_maintained_list():
    assert emails.disposable_domain("x@mailinator.com") == "mailinator.com"
    assert emails.disposable_domain("x@eu.mailinator.com") == "mailinator.com"
    assert emails.disposable_domain("x@gmail.com") is None
    assert emails.disposable_domain("not an email") is None


# --- each signal, and its near miss --------------------------------------------------------

def test_self_referral_by_email_ignoring_dots_and_tags(app, api, referrer):
    sign_up(api, referrer, email="J.Doe+1@GMail.com")
    assert signals(app) == [("self_email", "The friend's email j***@gmail.com is the "
                             "referrer's own address once dots and +tags are ignored.")]
    assert_ledger_true(app)


def test_another_gmail_address_is_not_self(app, api, referrer):
    sign_up(api, referrer, email="jdoe2@gmail.com")
    assert signals(app) == []


def test_self_referral_by_visitor_cookie(app, api, referrer):
    with app.app_context():
        fraud.record_known_visitor(customer_id(app), "browser-a", None)
        db.session.commit()
    sign_up(api, referrer, visitor_id="browser-a")
    assert signals(app) == [("self_visitor",
                             "The friend signed up from the same browser the referrer uses.")]


def test_a_browser_seen_only_for_another_customer_is_not_self(app, api, referrer):
    other = api.post("/customers", {"external_id": "other", "email": "o@example.com"})
    assert other.status_code == 201
    with app.app_context():
        fraud.record_known_visitor(customer_id(app, "other"), "browser-a", None)
        db.session.commit()
    sign_up(api, referrer, visitor_id="browser-a")
    assert signals(app) == []


def _signup_from_network(app, program, code, seen_hours_ago):
    with app.app_context():
        fraud.record_known_visitor(customer_id(app), "browser-a", "ip-hash-1")
        db.session.execute(update(KnownVisitor).values(
            seen_at=utcnow() - timedelta(hours=seen_hours_ago)))
        db.session.commit()
        register_customer(db.session.get(Program, program), email="pal@example.com",
                          password="harbor-maple-river", referral_code=code,
                          ip_hash="ip-hash-1")
        assert db.session.scalar(select(func.count(Referral.id))) == 1


def test_self_referral_by_ip_within_a_day(app, program, referrer):
    _signup_from_network(app, program, referrer, seen_hours_ago=23)
    assert signals(app) == [("self_ip", "The friend signed up from the referrer's network "
                             "(same IP) within a day of the referrer's sign-in.")]


def test_an_ip_seen_25_hours_ago_is_not_flagged(app, program, referrer):
    _signup_from_network(app, program, referrer, seen_hours_ago=25)
    assert signals(app) == []


def test_self_referral_by_card_fingerprint(app, api, program, referrer):
    sign_up(api, referrer)
    buy_with_card(app, program, "ref-1", "own-order", "card-1")  # the referrer's own purchase
    conversion_id = buy_with_card(app, program, "f-1", "friend-order", "card-1")
    with app.app_context():
        signal = db.session.scalar(select(FraudSignal))
        assert (signal.kind, signal.detail) == (
            "self_card", "The friend paid with the same card as the referrer.")
        assert signal.conversion_id == signal.conversion_key == conversion_id
    assert statuses(app) == ["on_hold"]
    assert_ledger_true(app)


def test_the_api_takes_a_card_fingerprint_for_the_same_card_signal(app, api, referrer):
    sign_up(api, referrer)
    own = {"order_id": "own-order", "external_id": "ref-1", "amount": 10000,
           "currency": "usd", "card_fingerprint": "Xq9fp"}
    assert api.post("/conversions", own).status_code == 201
    friends = {**own, "order_id": "friend-order", "external_id": "f-1"}
    assert api.post("/conversions", friends).status_code == 201
    assert signals(app) == [("self_card", "The friend paid with the same card as the referrer.")]
    assert statuses(app) == ["on_hold"]
    assert api.post("/conversions", friends).status_code == 200  # a replay of the same body
    changed = api.post("/conversions", {**friends, "card_fingerprint": "other"})
    assert changed.status_code == 409
    too_long = api.post("/conversions", {**friends, "order_id": "o-9",
                                         "card_fingerprint": "x" * 65})
    assert too_long.status_code == 400
    assert too_long.json["error"]["field"] == "card_fingerprint"
    assert_ledger_true(app)


def test_a_different_card_is_not_flagged(app, api, program, referrer):
    sign_up(api, referrer)
    buy_with_card(app, program, "ref-1", "own-order", "card-1")
    buy_with_card(app, program, "f-1", "friend-order", "card-2")
    assert signals(app) == []
    assert statuses(app) == ["available"]


def test_a_referrer_paying_with_their_friends_card_flags_the_friend(app, api, program,
                                                                      referrer):
    sign_up(api, referrer)
    buy_with_card(app, program, "f-1", "friend-order", "card-1")
    assert statuses(app) == ["available"]
    buy_with_card(app, program, "ref-1", "own-order", "card-1")
    assert signals(app, "self_card") == [
        ("self_card", "The friend paid with the same card as the referrer.")]
    assert statuses(app) == ["on_hold"]
    assert_ledger_true(app)


def test_disposable_email(app, api, referrer):
    sign_up(api, referrer, email="throwaway@mailinator.com")
    assert signals(app) == [("disposable_email", "The friend's email is at mailinator.com, "
                             "a disposable email service.")]


def test_an_ordinary_email_is_not_disposable(app, api, referrer):
    sign_up(api, referrer, email="someone@gmail.com")
    assert signals(app) == []


def test_velocity_above_the_programs_limit(app, api, program, referrer):
    with app.app_context():
        db.session.get(Program, program).velocity_limit = 2
        db.session.commit()
    sign_up(api, referrer, email="a@example.com", external_id="f-1")
    sign_up(api, referrer, email="b@example.com", external_id="f-2")
    assert signals(app) == []  # exactly at the limit
    sign_up(api, referrer, email="c@example.com", external_id="f-3")
    sentence = f"3 signups on code {referrer} within an hour; the program allows 2."
    assert signals(app) == [("velocity", sentence)] * 3  # the whole burst is flagged


def velocity_signals(app) -> dict[str, str]:
    """Each flagged friend's external id -> the detail of their velocity signal."""
    with app.app_context():
        rows = db.session.execute(
            select(Customer.external_id, FraudSignal.detail)
            .join(Referral, Referral.id == FraudSignal.referral_id)
            .join(Customer, Customer.id == Referral.friend_id)
            .where(FraudSignal.kind == "velocity")).all()
    assert len(rows) == len({external_id for external_id, _ in rows})  # once per referral
    return dict(rows)


def test_a_velocity_burst_flags_each_later_signup_alone(app, api, program, referrer):
    """Past the limit each new signup on the code adds its own signal (one statement), the
    referrals flagged already keep theirs; the earlier friends' rewards go on hold when
    the burst is first flagged, and a flagged friend's later rewards start on hold."""
    with app.app_context():
        db.session.get(Program, program).velocity_limit = 2
        db.session.commit()
    sign_up(api, referrer, email="a@example.com", external_id="f-1")
    sign_up(api, referrer, email="b@example.com", external_id="f-2")
    buy(api, order_id="o-1", external_id="f-1")
    buy(api, order_id="o-2", external_id="f-2")
    assert statuses(app) == ["available", "available"]
    sign_up(api, referrer, email="c@example.com", external_id="f-3")
    three = f"3 signups on code {referrer} within an hour; the program allows 2."
    assert velocity_signals(app) == {"f-1": three, "f-2": three, "f-3": three}
    assert statuses(app) == ["on_hold", "on_hold"]
    inserts = []

    def count_inserts(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO FRAUD_SIGNALS"):
            inserts.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count_inserts)
    try:
        sign_up(api, referrer, email="d@example.com", external_id="f-4")
    finally:
        event.remove(engine, "before_cursor_execute", count_inserts)
    assert len(inserts) == 1  # the burst is not flagged again row by row
    four = f"4 signups on code {referrer} within an hour; the program allows 2."
    assert velocity_signals(app) == {"f-1": three, "f-2": three, "f-3": three, "f-4": four}
    buy(api, order_id="o-4", external_id="f-4")
    assert statuses(app) == ["on_hold", "on_hold", "on_hold"]
    with app.app_context():
        held_from = db.session.scalars(select(Reward.held_from).order_by(Reward.id)).all()
        f4_signal = db.session.scalar(select(FraudSignal.id).where(
            FraudSignal.detail == four))
    assert held_from == ["available", "available", "available"]
    clear(app, f4_signal, coordinator(app))
    assert statuses(app) == ["on_hold", "on_hold", "available"]
    assert_ledger_true(app)


def test_signups_racing_on_one_code_flag_each_referral_once(app, api, program, referrer):
    with app.app_context():
        db.session.get(Program, program).velocity_limit = 2
        db.session.commit()
    sign_up(api, referrer, email="a@example.com", external_id="f-1")
    buy(api, order_id="o-1", external_id="f-1")
    racers = 4
    barrier = threading.Barrier(racers)
    # Each racer's burst count waits (up to a second) for the others to reach theirs: with
    # nothing taking the counts in turn, all four count before any commits.
    counting = threading.Barrier(racers, timeout=1)
    errors = []

    def count_together(conn, cursor, statement, parameters, context, executemany):
        if "count(referrals.id)" in statement:
            with contextlib.suppress(threading.BrokenBarrierError):
                counting.wait()

    def join(n):
        with app.app_context():
            barrier.wait()
            try:
                record_signup(db.session.get(Program, program), email=f"r{n}@example.com",
                              external_id=f"r-{n}", referral_code=referrer)
            except Exception as error:
                errors.append(error)
            finally:
                db.session.remove()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count_together)
    threads = [threading.Thread(target=join, args=(n,)) for n in range(racers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", count_together)
    assert errors == []
    flagged = velocity_signals(app)
    assert set(flagged) == {"f-1", *(f"r-{n}" for n in range(racers))}
    assert statuses(app) == ["on_hold"]  # f-1's reward, held once the burst was flagged
    assert_ledger_true(app)


def test_velocity_counts_only_the_last_hour(app, api, program, referrer):
    with app.app_context():
        db.session.get(Program, program).velocity_limit = 2
        db.session.commit()
    sign_up(api, referrer, email="a@example.com", external_id="f-1")
    sign_up(api, referrer, email="b@example.com", external_id="f-2")
    with app.app_context():
        db.session.execute(update(Referral).values(created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    sign_up(api, referrer, email="c@example.com", external_id="f-3")
    assert signals(app) == []


def test_a_signup_counts_with_a_later_stamped_one_that_counted_first(app, api, program,
                                                                      referrer):
    """Racing signups are stamped in one order and counted in another: the one counted
    last counts up to the latest stamp on the code, so the burst is still seen."""
    with app.app_context():
        db.session.get(Program, program).velocity_limit = 2
        db.session.commit()
    sign_up(api, referrer, email="a@example.com", external_id="f-1")
    sign_up(api, referrer, email="b@example.com", external_id="f-2")
    assert signals(app) == []
    with app.app_context():  # f-2 stamped ten minutes after the signup still to come
        db.session.execute(update(Referral).where(Referral.friend_id == customer_id(app, "f-2"))
                           .values(created_at=utcnow() + timedelta(minutes=10)))
        db.session.commit()
    sign_up(api, referrer, email="c@example.com", external_id="f-3")
    three = f"3 signups on code {referrer} within an hour; the program allows 2."
    assert velocity_signals(app) == {"f-1": three, "f-2": three, "f-3": three}


def test_computing_signals_again_adds_nothing(app, api, referrer):
    sign_up(api, referrer, email="jdoe+x@gmail.com")
    with app.app_context():
        referral = db.session.scalar(select(Referral))
        assert fraud.signals_for_signup(referral, visitor_id=None, ip_hash=None) == []
        db.session.commit()
    assert len(signals(app)) == 1


# --- through the pages: sign-in remembers the browser, the landing page passes the IP ----

def test_a_friend_signing_up_in_the_referrers_browser_is_flagged(app, program, make_user):
    email = make_user("customer", email="maria@example.com")
    browser = app.test_client()
    assert login(browser, email).status_code == 302
    assert browser.get_cookie("rv") is not None  # a visitor id is given at sign-in
    with app.app_context():
        account = db.session.scalar(select(Account).filter_by(email=email))
        known = db.session.scalar(select(KnownVisitor))
        assert known.customer_id == account.customer_id and known.ip_hash
        code = primary_code(db.session.get(Customer, account.customer_id)).code
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/portal")})
    landing = browser.get(browser.get(f"/r/{code}").headers["Location"])
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                      landing.get_data(as_text=True)).group(1)
    response = browser.post(f"/join/{code}", data={
        "name": "Fred", "email": "fred@example.com", "password": "harbor-maple-river",
        "csrf_token": token})
    assert response.status_code == 302
    assert sorted(kind for kind, _ in signals(app)) == ["self_ip", "self_visitor"]


# --- holding, payouts and the coordinator's decisions ---------------------------------------

def test_a_flagged_referral_is_held_out_of_payouts_until_cleared(app, api, program, referrer):
    sign_up(api, referrer, email="jdoe+x@gmail.com")
    buy(api)
    assert statuses(app) == ["on_hold"]
    assert propose(app, program) == []
    assert_ledger_true(app)
    cora = coordinator(app)
    [signal_id] = signal_ids(app)
    assert clear(app, signal_id, cora) == "cleared"
    assert statuses(app) == ["available"]
    assert_ledger_true(app)
    [payout_id] = propose(app, program)
    assert statuses(app) == ["in_payout"]
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).filter_by(action="clear_signal"))
        assert entry.subject == f"signal:{signal_id}" and entry.account_id == cora
        assert '"status": "open"' in entry.before and '"status": "cleared"' in entry.after
        assert entry.note.startswith("The friend's email j***@gmail.com")
        assert review.open_signals_for_payout(payout_id) == []
    assert_ledger_true(app)


def test_a_rejected_signal_rejects_the_referrals_rewards(app, api, program, referrer):
    sign_up(api, referrer, email="x@mailinator.com")
    buy(api)
    assert statuses(app) == ["on_hold"]
    cora = coordinator(app)
    [signal_id] = signal_ids(app)
    assert reject(app, signal_id, cora) == "rejected"
    assert statuses(app) == ["rejected"]
    buy(api, order_id="o-2")  # later purchases of a rejected referral earn nothing payable
    assert statuses(app) == ["rejected", "rejected"]
    assert propose(app, program) == []
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).filter_by(action="reject_signal"))
        assert entry.subject == f"signal:{signal_id}" and entry.account_id == cora
        assert "The friend is the referrer." in entry.note
        assert '"reason": "The friend is the referrer."' in entry.after
    assert_ledger_true(app)


def test_a_signal_at_a_later_purchase_holds_the_earlier_rewards(app, api, program, referrer):
    sign_up(api, referrer)
    buy_with_card(app, program, "f-1", "first", None)
    assert statuses(app) == ["available"]
    buy_with_card(app, program, "ref-1", "own", "card-1")
    buy_with_card(app, program, "f-1", "second", "card-1")
    assert statuses(app) == ["on_hold", "on_hold"]
    with app.app_context():
        held_from = db.session.scalars(select(Reward.held_from).order_by(Reward.id)).all()
        assert held_from == ["available", "available"]
    assert propose(app, program) == []
    assert_ledger_true(app)


def test_every_open_signal_must_be_cleared_before_release(app, api, program, referrer):
    sign_up(api, referrer, email="j.doe+x@gmail.com")
    with app.app_context():
        referral = db.session.scalar(select(Referral))
        fraud.record_known_visitor(referral.referrer_id, "browser-b", None)
        fraud.signals_for_signup(referral, visitor_id="browser-b", ip_hash=None)
        db.session.commit()
    buy(api)
    first, second = signal_ids(app)
    cora = coordinator(app)
    clear(app, first, cora)
    assert statuses(app) == ["on_hold"]
    clear(app, second, cora)
    assert statuses(app) == ["available"]
    assert_ledger_true(app)


def test_a_pending_reward_goes_back_to_pending(app, api, program, referrer):
    with app.app_context():
        publish(db.session.get(Program, program), POLICY | {"hold_days": 30})
    sign_up(api, referrer, email="jdoe+x@gmail.com")
    buy(api)
    assert statuses(app) == ["on_hold"]
    clear(app, signal_ids(app)[0], coordinator(app))
    assert statuses(app) == ["pending"]
    assert_ledger_true(app)


def test_a_signal_after_the_payout_was_proposed_is_shown_with_it(app, api, program, referrer):
    sign_up(api, referrer)
    buy_with_card(app, program, "f-1", "first", "card-1")
    [payout_id] = propose(app, program)
    buy_with_card(app, program, "ref-1", "own", "card-1")
    assert statuses(app) == ["in_payout"]  # a payout's rewards are the coordinator's call
    with app.app_context():
        [signal] = review.open_signals_for_payout(payout_id)
        assert signal.kind == "self_card"
        assert review.signals_for_referral(signal.referral_id) == [signal]
    assert_ledger_true(app)


def test_a_decision_is_made_once_and_a_rejection_needs_a_reason(app, api, referrer):
    sign_up(api, referrer, email="jdoe+x@gmail.com")
    [signal_id] = signal_ids(app)
    cora = coordinator(app)
    with pytest.raises(ServiceError):
        reject(app, signal_id, cora, reason="  ")
    assert clear(app, signal_id, cora) == "cleared"
    with pytest.raises(Conflict):
        clear(app, signal_id, cora)
    with pytest.raises(Conflict):
        reject(app, signal_id, cora)
    with app.app_context():
        signal = db.session.get(FraudSignal, signal_id)
        assert signal.resolved_by == cora and signal.resolved_at is not None
        assert signal.resolved_at > datetime.now(UTC) - timedelta(minutes=1)
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action.in_(("clear_signal", "reject_signal")))) == 1


def test_an_unflagged_referral_is_paid_as_before(app, api, program, referrer):
    sign_up(api, referrer)
    buy(api)
    assert statuses(app) == ["available"]
    assert len(propose(app, program)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(Conversion.id))) == 1
    assert_ledger_true(app)


def test_coordinators_deciding_one_signal_at_once_decide_it_once(app, api, referrer):
    sign_up(api, referrer, email="jdoe+x@gmail.com")
    buy(api)
    [signal_id] = signal_ids(app)
    accounts = [coordinator(app)]
    with app.app_context():
        accounts += [create_account(f"c{n}@example.com", PASSWORD, "coordinator").id
                     for n in range(3)]
    barrier = threading.Barrier(len(accounts))
    outcomes = []

    def decide(n, account_id):
        with app.app_context():
            barrier.wait()
            try:
                account = db.session.get(Account, account_id)
                if n % 2:
                    review.reject(signal_id, account, "Same person.")
                else:
                    review.clear(signal_id, account)
                outcomes.append("done")
            except Conflict:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=decide, args=pair) for pair in enumerate(accounts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * (len(accounts) - 1) + ["done"]
    with app.app_context():
        decided = db.session.get(FraudSignal, signal_id).status
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action.in_(("clear_signal", "reject_signal")))) == 1
    assert statuses(app) == ["available" if decided == "cleared" else "rejected"]
    assert_ledger_true(app)


def test_a_signal_racing_the_reward_computation_still_holds_the_reward(app, api, referrer,
                                                                        monkeypatch):
    sign_up(api, referrer)
    monkeypatch.setattr("rewards.background.enqueue", lambda *args: None)  # compute it below
    conversion_id = buy(api)["conversion_id"]
    with app.app_context():
        referral_id = db.session.scalar(select(Referral.id))
        fraud.record_known_visitor(customer_id(app), "browser-a", None)
        db.session.commit()
    barrier = threading.Barrier(2)
    errors = []

    def compute():
        with app.app_context():
            barrier.wait()
            try:
                assert reward_conversion(conversion_id)
            except Exception as error:
                errors.append(error)
            finally:
                db.session.remove()

    def flag():
        with app.app_context():
            barrier.wait()
            try:
                referral = db.session.get(Referral, referral_id)
                assert fraud.signals_for_signup(referral, visitor_id="browser-a", ip_hash=None)
                db.session.commit()
            except Exception as error:
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=compute), threading.Thread(target=flag)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert statuses(app) == ["on_hold"]
    assert_ledger_true(app)
