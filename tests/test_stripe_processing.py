"""Processing Stripe's events: purchases with their attribution chain, refunds, disputes,
Connect accounts; in any order, any number of times, ending in the same state."""

import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from rewards.extensions import db
from rewards.fraud import review
from rewards.ledger import holds
from rewards.ledger.check import check_ledger
from rewards.models import (
    Account,
    Balance,
    Click,
    Conversion,
    Customer,
    Dispute,
    FraudSignal,
    ReferralCode,
    Reward,
    StripeEvent,
    utcnow,
)
from rewards.stripe.inbox import ingest, process

from .stripe_kit import (
    SECRETS,
    charge_refunded,
    checkout,
    deliver,
    dispute,
    event,
)


@pytest.fixture
def secrets(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRETS", list(SECRETS))
    return SECRETS


@pytest.fixture
def code(referrer_code, secrets):
    return referrer_code


def purchase_row(app, order_id="pi_1"):
    with app.app_context():
        conversion = db.session.scalar(select(Conversion).filter_by(order_id=order_id))
        db.session.expunge_all()
        return conversion


def event_rows(app):
    with app.app_context():
        return {e.event_id: (e.status, e.outcome, e.order_id)
                for e in db.session.scalars(select(StripeEvent))}


def state(app):
    with app.app_context():
        rewards = sorted((r.role, r.status, r.amount, r.reversed_amount)
                         for r in db.session.scalars(select(Reward)))
        balances = sorted(
            (b.customer_id, b.currency, b.pending, b.on_hold, b.available, b.in_payout,
             b.paid, b.owed) for b in db.session.scalars(select(Balance))
            if any((b.pending, b.on_hold, b.available, b.in_payout, b.paid, b.owed)))
        conversion = db.session.scalar(select(Conversion))
        disputes = sorted(d.status for d in db.session.scalars(select(Dispute)))
        events = sorted(e.status for e in db.session.scalars(select(StripeEvent)))
        assert check_ledger() == []
        return {"rewards": rewards, "balances": balances, "disputes": disputes,
                "refunded": conversion.refunded_amount if conversion else None,
                "events": events}


# --- in any order --------------------------------------------------------------------------

ORDERS = list(itertools.permutations(range(4)))


@pytest.mark.parametrize("closed", ["won", "lost"])
@pytest.mark.parametrize("order", ORDERS, ids=["".join(map(str, o)) for o in ORDERS])
def test_every_order_of_the_events_ends_in_the_same_state(app, client, code, order, closed):
    t0 = int(time.time()) - 600
    events = [
        checkout("evt_p", client_reference_id=code, created=t0),
        charge_refunded("evt_r", refunded=2500, created=t0 + 10),
        dispute("evt_dc", "charge.dispute.created", created=t0 + 20),
        dispute("evt_dx", "charge.dispute.closed", status=closed, created=t0 + 30),
    ]
    for index in order:
        assert deliver(client, events[index]).status_code == 200
    referrer_id = purchase_row(app).referrer_id
    expected = {
        "won": {"rewards": [("referrer", "available", 1000, 250)],
                "balances": [(referrer_id, "usd", 0, 0, 750, 0, 0, 0)],
                "disputes": ["won"], "refunded": 2500, "events": ["processed"] * 4},
        "lost": {"rewards": [("referrer", "reversed", 1000, 1000)], "balances": [],
                 "disputes": ["lost"], "refunded": 10000, "events": ["processed"] * 4},
    }[closed]
    assert state(app) == expected
    # Delivered again, in reverse: nothing changes.
    for index in reversed(order):
        assert deliver(client, events[index]).json["duplicate"] is True
    assert state(app) == expected


@pytest.mark.parametrize("closed", ["won", "lost"])
def test_a_dispute_after_payment_claws_back_only_when_lost(app, client, code, closed):
    from rewards.models import Adjustment

    from .test_ledger import pay_all

    deliver(client, checkout("evt_p", client_reference_id=code))  # the policy holds 0 days
    pay_all(app)
    deliver(client, dispute("evt_dc", "charge.dispute.created"))
    assert "0 reward(s) put on hold" in event_rows(app)["evt_dc"][1]  # paid: nothing to hold
    deliver(client, dispute("evt_dx", "charge.dispute.closed", status=closed))
    referrer_id = purchase_row(app).referrer_id
    owed = {"won": 0, "lost": 1000}[closed]
    after = state(app)
    assert after["rewards"] == [("referrer", "paid", 1000, 0)]  # paid stays paid
    assert after["balances"] == [(referrer_id, "usd", 0, 0, 0, 0, 1000, owed)]
    with app.app_context():
        clawbacks = db.session.execute(select(Adjustment.kind, Adjustment.amount,
                                              Adjustment.status)).all()
        assert check_ledger() == []
    assert clawbacks == ([("clawback", -1000, "owed")] if closed == "lost" else [])


def test_processing_an_event_twice_changes_nothing(app, client, code):
    deliver(client, checkout("evt_p", client_reference_id=code))
    deliver(client, charge_refunded("evt_r", refunded=4000))
    before = state(app)
    with app.app_context():
        for row_id in db.session.scalars(select(StripeEvent.id)).all():
            assert process(row_id) == "processed"
        db.session.execute(db.update(StripeEvent).values(status="failed"))
        db.session.commit()
        for row_id in db.session.scalars(select(StripeEvent.id)).all():
            assert process(row_id) == "processed"
    assert state(app) == before
    assert before["refunded"] == 4000


def test_cumulative_refunds_in_any_order(app, client, code):
    deliver(client, checkout("evt_p", client_reference_id=code))
    deliver(client, charge_refunded("evt_r2", refunded=6000))
    deliver(client, charge_refunded("evt_r1", refunded=3000))
    assert purchase_row(app).refunded_amount == 6000
    assert event_rows(app)["evt_r1"][0] == "processed"
    assert "Nothing more to refund" in event_rows(app)["evt_r1"][1]


def test_a_refund_before_its_purchase_waits_then_applies(app, client, code):
    deliver(client, charge_refunded("evt_r", refunded=5000))
    assert event_rows(app)["evt_r"] == (
        "waiting", "Waiting for the purchase pi_1 to be recorded.", "pi_1")
    deliver(client, checkout("evt_p", client_reference_id=code))
    assert event_rows(app)["evt_r"][0] == "processed"
    assert state(app)["rewards"] == [("referrer", "available", 1000, 500)]


def test_an_open_dispute_holds_the_rewards_and_a_won_one_releases_them(app, client, code):
    deliver(client, checkout("evt_p", client_reference_id=code))
    deliver(client, dispute("evt_dc", "charge.dispute.created"))
    assert state(app)["rewards"] == [("referrer", "on_hold", 1000, 0)]
    deliver(client, dispute("evt_dx", "charge.dispute.closed", status="won"))
    assert state(app)["rewards"] == [("referrer", "available", 1000, 0)]


def test_clearing_a_fraud_signal_keeps_a_disputed_purchase_on_hold(app, client, code,
                                                                    make_user):
    deliver(client, checkout("evt_p", client_reference_id=code))
    deliver(client, dispute("evt_dc", "charge.dispute.created"))
    coordinator = make_user("coordinator")
    with app.app_context():
        conversion = db.session.scalar(select(Conversion))
        signal = FraudSignal(program_id=conversion.program_id,
                             referral_id=conversion.referral_id, kind="velocity",
                             conversion_key=0, detail="test", status="open",
                             created_at=utcnow())
        db.session.add(signal)
        db.session.commit()
        review.clear(signal.id, db.session.scalar(select(Account).filter_by(email=coordinator)))
    assert state(app)["rewards"] == [("referrer", "on_hold", 1000, 0)]
    # The dispute won: a fraud signal still open would keep them held; none is.
    deliver(client, dispute("evt_dx", "charge.dispute.closed", status="won"))
    assert state(app)["rewards"] == [("referrer", "available", 1000, 0)]


def test_a_won_dispute_does_not_release_what_a_fraud_signal_holds(app, client, code):
    deliver(client, checkout("evt_p", client_reference_id=code))
    with app.app_context():
        conversion = db.session.scalar(select(Conversion))
        db.session.add(FraudSignal(program_id=conversion.program_id,
                                   referral_id=conversion.referral_id, kind="velocity",
                                   conversion_key=0, detail="test", status="open",
                                   created_at=utcnow()))
        db.session.commit()
        holds.hold_referrals([conversion.referral_id])
        db.session.commit()
    deliver(client, dispute("evt_dc", "charge.dispute.created"))
    deliver(client, dispute("evt_dx", "charge.dispute.closed", status="won"))
    assert state(app)["rewards"] == [("referrer", "on_hold", 1000, 0)]


# --- purchases -----------------------------------------------------------------------------

def test_an_unpaid_session_records_nothing_until_its_payment_succeeds(app, client, code):
    deliver(client, checkout("evt_1", paid=False, client_reference_id=code))
    assert event_rows(app)["evt_1"][0] == "ignored"
    assert purchase_row(app) is None
    paid = checkout("evt_2", client_reference_id=code)
    paid["type"] = "checkout.session.async_payment_succeeded"
    deliver(client, paid)
    conversion = purchase_row(app)
    assert (conversion.source, conversion.amount, conversion.matched_via) == (
        "stripe", 10000, "client_reference_id")


def test_an_invoice_is_a_purchase_under_its_payment_intent_or_its_own_id(app, client, code):
    invoice = {"id": "in_1", "object": "invoice", "amount_paid": 3000, "currency": "usd",
               "payment_intent": None, "customer": "cus_9", "customer_email": "f@example.com",
               "metadata": {"referral_code": code}}
    deliver(client, event("evt_1", "invoice.paid", invoice))
    conversion = purchase_row(app, "in_1")
    assert (conversion.amount, conversion.matched_via) == (3000, "metadata")
    deliver(client, event("evt_2", "invoice.paid", {**invoice, "id": "in_2",
                                                     "payment_intent": "pi_7"}))
    assert purchase_row(app, "pi_7").amount == 3000


def make_click(app, code, visitor_id):
    with app.app_context():
        found = db.session.scalar(select(ReferralCode).filter_by(code=code))
        db.session.add(Click(uid=f"u{visitor_id}"[:32], program_id=found.program_id,
                             code_id=found.id, referrer_id=found.customer_id,
                             visitor_id=visitor_id,
                             created_at=utcnow() - timedelta(days=1)))
        db.session.commit()


def referred_signup(api, code, email, external_id, stripe_customer_id=None):
    body = {"external_id": external_id, "email": email}
    if stripe_customer_id:
        body["stripe_customer_id"] = stripe_customer_id
    api.post("/customers", body)
    signup = api.post("/signups", {"email": email, "external_id": external_id,
                                   "referral_code": code})
    assert signup.json["attributed"] is True, signup.json


@pytest.mark.parametrize("link", ["visitor", "client_reference_id", "metadata",
                                  "promotion_code", "expanded_promotion_code",
                                  "metadata_promotion_code", "stripe_customer", "email",
                                  "first_valid_link"])
def test_each_link_of_the_attribution_chain(app, client, api, code, link):
    fields, email = {}, "buyer@example.com"
    expected_via, expected_by = link, "code"
    if link == "visitor":
        make_click(app, code, "v" * 32)
        fields = {"client_reference_id": "v" * 32}
        expected_via, expected_by = "client_reference_id", "visitor"
    elif link == "client_reference_id":
        fields = {"client_reference_id": code}
    elif link == "metadata":
        fields = {"metadata": {"referral_code": code}}
    elif link == "promotion_code":
        fields = {"discounts": [{"coupon": "co_1", "promotion_code": code}]}
    elif link == "expanded_promotion_code":
        fields = {"discounts": [{"promotion_code": {"id": "promo_1", "code": code}}]}
        expected_via = "promotion_code"
    elif link == "metadata_promotion_code":
        fields = {"metadata": {"promotion_code": code}}
        expected_via = "promotion_code"
    elif link == "stripe_customer":
        referred_signup(api, code, "known@example.com", "known", "cus_known")
        fields = {"customer": "cus_known"}  # paying with another email
        expected_by = "signup"
    elif link == "email":
        referred_signup(api, code, email, "buyer")
        expected_by = "signup"
    elif link == "first_valid_link":
        fields = {"client_reference_id": "NOSUCHCODE", "metadata": {"referral_code": code}}
        expected_via = "metadata"
    deliver(client, checkout("evt_1", email=email, **fields))
    conversion = purchase_row(app)
    assert conversion is not None, event_rows(app)
    assert (conversion.matched_via, conversion.matched_by) == (expected_via, expected_by)
    assert conversion.reason.startswith("Attributed")
    assert state(app)["rewards"] == [("referrer", "available", 1000, 0)]
    assert "matched by" in event_rows(app)["evt_1"][1]


def test_a_promotion_code_id_is_looked_up_at_stripe_once(app, client, code, stripe_fake):
    stripe_fake.objects["promotion_code"] = [
        {"id": "promo_9x", "object": "promotion_code", "code": code.lower()}]
    for n, pi in ((1, "pi_1"), (2, "pi_2")):
        deliver(client, checkout(f"evt_{n}", pi=pi, email=f"buyer{n}@example.com",
                                 discounts=[{"coupon": "co_1", "promotion_code": "promo_9x"}]))
    for pi in ("pi_1", "pi_2"):
        conversion = purchase_row(app, pi)
        assert (conversion.matched_via, conversion.matched_by) == ("promotion_code", "code")
    assert len(stripe_fake.calls("GET /v1/promotion_codes/promo_9x")) == 1


def test_an_unknown_promotion_code_id_leaves_the_purchase_unattributed(app, client, code,
                                                                      stripe_fake):
    deliver(client, checkout("evt_1", discounts=[{"promotion_code": "promo_gone"}]))
    conversion = purchase_row(app)
    assert (conversion.matched_via, conversion.referrer_id) == (None, None)
    assert len(stripe_fake.calls("GET /v1/promotion_codes/promo_gone")) == 1


def test_stripe_unreachable_fails_the_event_and_a_retry_attributes_it(app, client, code,
                                                                      stripe_fake):
    stripe_fake.objects["promotion_code"] = [
        {"id": "promo_9x", "object": "promotion_code", "code": code}]
    stripe_fake.fail("GET /v1/promotion_codes/promo_9x", "api_error", status=500, times=20)
    deliver(client, checkout("evt_1", discounts=[{"promotion_code": "promo_9x"}]))
    status, outcome, _ = event_rows(app)["evt_1"]
    assert status == "failed" and purchase_row(app) is None, outcome
    assert "Refused by the fake Stripe." in outcome
    stripe_fake.failures.clear()  # Stripe answers again
    with app.app_context():
        row_id = db.session.scalar(select(StripeEvent.id).filter_by(event_id="evt_1"))
        assert process(row_id) == "processed"
    assert purchase_row(app).matched_via == "promotion_code"


def test_no_link_records_an_unattributed_purchase(app, client, code):
    deliver(client, checkout("evt_1", client_reference_id="NOSUCHCODE", customer="cus_new"))
    conversion = purchase_row(app)
    assert (conversion.matched_via, conversion.referrer_id) == (None, None)
    assert "NOSUCHCODE" in conversion.reason
    with app.app_context():
        buyer = db.session.get(Customer, conversion.customer_id)
        assert buyer.stripe_customer_id == "cus_new"  # set on the buyer


def test_an_earlier_referral_stands_over_a_link(app, client, api, code):
    referred_signup(api, code, "friend@example.com", "friend")
    other = api.post("/customers", {"external_id": "other", "email": "o@example.com"}).json[
        "referral_code"]
    deliver(client, checkout("evt_1", metadata={"referral_code": other}))
    conversion = purchase_row(app)
    assert (conversion.matched_via, conversion.matched_by) == ("email", "signup")


def test_the_json_api_records_no_stripe_link(app, api, code):
    response = api.post("/conversions", {"order_id": "o-1", "email": "b@example.com",
                                         "amount": 1000, "currency": "usd",
                                         "referral_code": code})
    assert response.status_code == 201
    assert purchase_row(app, "o-1").matched_via is None


# --- other events --------------------------------------------------------------------------

def test_account_updated_marks_the_connected_account(app, client, code):
    with app.app_context():
        referrer = db.session.scalar(select(Customer).filter_by(external_id="ref"))
        referrer.stripe_account_id = "acct_1"
        db.session.commit()
    deliver(client, event("evt_1", "account.updated",
                          {"id": "acct_1", "object": "account", "payouts_enabled": True}))
    with app.app_context():
        assert db.session.scalar(select(Customer.stripe_account_ready)
                                 .filter_by(external_id="ref")) is True
    assert event_rows(app)["evt_1"][0] == "processed"


def test_ingest_is_insert_or_nothing(app, program):
    with app.app_context():
        first, new = ingest(event("evt_1", "customer.created", {"id": "cus_1"}))
        again, new_again = ingest(event("evt_1", "customer.created", {"id": "cus_1"}))
        assert (new, new_again) == (True, False)
        assert first.id == again.id
        assert process(first.id) == "ignored"
        assert process(first.id) == "ignored"
