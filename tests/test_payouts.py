"""Payouts: proposals, approval (maker-checker), sending through Stripe once, rejection."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from rewards.errors import Conflict
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.ledger.check import check_ledger
from rewards.models import (
    Account,
    Adjustment,
    AuditEntry,
    Customer,
    Payout,
    Program,
    Reward,
    utcnow,
)
from rewards.payouts import approvals, proposals, sending
from rewards.people.accounts import create_account
from rewards.policies.versions import publish
from rewards.sweep import sweep

from .conftest import PASSWORD

POLICY = {"currency": "usd", "hold_days": 0, "purchases": "all",
          "referrer": {"percent_bps": 1000}}


@pytest.fixture
def earned(app, api, program):
    """ref-1 has $20.00 available from two purchases by their friend; pays by Connect."""
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    code = api.post("/customers", {"external_id": "ref-1", "email": "ref@example.com"}).json[
        "referral_code"]
    api.post("/signups", {"email": "f@example.com", "external_id": "f-1", "referral_code": code})
    for n in (1, 2):
        assert api.post("/conversions", {"order_id": f"o-{n}", "external_id": "f-1",
                                         "amount": 10000, "currency": "usd"}).status_code == 201
    with app.app_context():
        customer = db.session.scalar(select(Customer).filter_by(external_id="ref-1"))
        customer.payout_method = "connect"
        customer.stripe_account_id = "acct_ref1"
        customer.stripe_account_ready = True
        db.session.commit()
        return customer.id


def coordinator(app, name="cora"):
    with app.app_context():
        return create_account(f"{name}@example.com", PASSWORD, "coordinator", name).id


def propose(app, **program_changes):
    with app.app_context():
        program = db.session.scalar(select(Program))
        for key, value in program_changes.items():
            setattr(program, key, value)
        db.session.commit()
        made = proposals.propose(program)
        return [p.id for p in made]


def approve(app, payout_id, account_id):
    with app.app_context():
        return approvals.approve(payout_id, db.session.get(Account, account_id)).status


def payout_row(app, payout_id) -> Payout:
    with app.app_context():
        row = db.session.get(Payout, payout_id)
        db.session.expunge(row)
        return row


def ledger_true(app):
    with app.app_context():
        return check_ledger()


def test_available_rewards_become_one_payout(app, earned):
    [payout_id] = propose(app)
    row = payout_row(app, payout_id)
    assert (row.gross, row.netted, row.amount, row.currency, row.status, row.method) == (
        2000, 0, 2000, "usd", "awaiting_approval", "connect")
    assert row.idempotency_key == f"payout-{payout_id}"
    assert propose(app) == []  # one live payout per customer and currency
    with app.app_context():
        statuses = set(db.session.scalars(select(Reward.status).filter_by(customer_id=earned)))
    assert statuses == {"in_payout"}
    assert ledger_true(app) == []


def test_the_minimum_holds_payouts_back(app, earned):
    assert propose(app, payout_minimum=2001) == []
    assert len(propose(app, payout_minimum=2000)) == 1


def test_approval_sends_one_transfer_with_the_stored_key(app, earned, stripe_fake):
    [payout_id] = propose(app)
    assert approve(app, payout_id, coordinator(app)) == "paid"  # sent inline, no Redis
    row = payout_row(app, payout_id)
    assert row.status == "paid" and row.stripe_object_id.startswith("tr_")
    [call] = stripe_fake.calls("POST /v1/transfers")
    assert call.idempotency_key == f"payout-{payout_id}"
    assert (call.params["amount"], call.params["currency"], call.params["destination"]) == (
        2000, "usd", "acct_ref1")
    with app.app_context():
        assert set(db.session.scalars(select(Reward.status).filter_by(customer_id=earned))) == {
            "paid"}
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.subject.like("payout:%")).order_by(AuditEntry.id)).all()
    assert actions == ["propose_payout", "approve_payout"]
    assert ledger_true(app) == []


def test_maker_checker_needs_two_different_people(app, earned, stripe_fake):
    [payout_id] = propose(app, second_approval_above=1500)
    first, second = coordinator(app, "cora"), coordinator(app, "carl")
    assert approve(app, payout_id, first) == "awaiting_approval"
    with pytest.raises(Conflict, match="already approved"):
        approve(app, payout_id, first)
    assert stripe_fake.calls("POST /v1/transfers") == []
    approve(app, payout_id, second)
    assert payout_row(app, payout_id).status == "paid"
    assert len(stripe_fake.calls("POST /v1/transfers")) == 1


@pytest.mark.parametrize("rewards_to", ["available", "rejected"])
def test_rejection_returns_or_rejects_the_rewards(app, earned, rewards_to):
    [payout_id] = propose(app)
    with app.app_context():
        account = db.session.get(Account, coordinator(app))
        with pytest.raises(Exception, match="reason"):
            approvals.reject(payout_id, account, "", rewards_to)
        approvals.reject(payout_id, account, "Looks like a duplicate account", rewards_to)
        statuses = set(db.session.scalars(select(Reward.status).filter_by(customer_id=earned)))
        assert statuses == {rewards_to}
        assert db.session.get(Payout, payout_id).rejection_reason == \
            "Looks like a duplicate account"
    assert ledger_true(app) == []
    assert (len(propose(app)) == 1) is (rewards_to == "available")


def test_clawbacks_owed_are_netted_and_given_back_on_rejection(app, api, earned):
    [first] = propose(app)
    with app.app_context():
        account = db.session.get(Account, coordinator(app))
        approvals.approve(first, account)
        db.session.execute(update(Payout).values(method="manual"))
        db.session.commit()
    with app.app_context():
        db.session.execute(update(Payout).where(Payout.id == first).values(status="approved"))
        db.session.commit()
        approvals.mark_paid(first, db.session.get(Account, coordinator(app, "carl")), "BANK-1")
    assert api.post("/refunds", {"order_id": "o-1", "amount": 10000}).status_code == 200
    api.post("/conversions", {"order_id": "o-3", "external_id": "f-1", "amount": 30000,
                              "currency": "usd"})
    [second] = propose(app)
    row = payout_row(app, second)
    assert (row.gross, row.netted, row.amount) == (3000, 1000, 2000)
    with app.app_context():
        approvals.reject(second, db.session.get(Account, coordinator(app, "dora")), "later",
                       "available")
        assert db.session.scalar(select(Adjustment.status).filter_by(kind="clawback")) == "owed"
    assert ledger_true(app) == []


def test_low_platform_balance_leaves_it_approved_and_it_is_retried(app, earned, stripe_fake):
    stripe_fake.fail("POST /v1/transfers", "balance_insufficient")
    [payout_id] = propose(app)
    approve(app, payout_id, coordinator(app))
    row = payout_row(app, payout_id)
    assert row.status == "approved" and "Platform balance too low" in row.failure_reason
    with app.app_context():
        db.session.execute(update(Payout).values(last_attempt_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        assert sweep()["payouts_retried"] == 1
    row = payout_row(app, payout_id)
    assert row.status == "paid"
    calls = stripe_fake.calls("POST /v1/transfers")
    assert [c.idempotency_key for c in calls] == [f"payout-{payout_id}",
                                                  f"payout-{payout_id}-retry-2"]
    assert len(stripe_fake.objects["transfer"]) == 1


def test_an_account_that_cannot_receive_needs_attention(app, earned, stripe_fake):
    stripe_fake.fail("POST /v1/transfers", "insufficient_capabilities_for_transfer",
                     message="The destination account cannot receive transfers.")
    [payout_id] = propose(app)
    approve(app, payout_id, coordinator(app))
    row = payout_row(app, payout_id)
    assert row.status == "needs_attention"
    assert row.failure_reason == "The destination account cannot receive transfers."


def test_not_onboarded_needs_attention_without_calling_stripe(app, earned, stripe_fake):
    with app.app_context():
        db.session.get(Customer, earned).stripe_account_ready = False
        db.session.commit()
    [payout_id] = propose(app)
    approve(app, payout_id, coordinator(app))
    assert payout_row(app, payout_id).status == "needs_attention"
    assert stripe_fake.requests == []


def test_a_sender_that_dies_after_stripe_answered_is_resumed_without_a_second_transfer(
        app, earned, stripe_fake):
    [payout_id] = propose(app)

    def die(*args, **kwargs):
        raise SystemExit("worker killed after Stripe answered")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(sending, "settle", die)
        approve(app, payout_id, coordinator(app))
    assert payout_row(app, payout_id).status == "processing"
    assert len(stripe_fake.calls("POST /v1/transfers")) == 1
    with app.app_context():
        assert sending.send(payout_id, resume=True) == "not stale"  # its sender may be alive
        db.session.execute(update(Payout).values(last_attempt_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        assert sweep()["payouts_retried"] == 1
    row = payout_row(app, payout_id)
    assert row.status == "paid"
    assert row.stripe_object_id == stripe_fake.objects["transfer"][0]["id"]
    assert len(stripe_fake.calls("POST /v1/transfers")) == 1
    assert len(stripe_fake.calls("GET /v1/transfers")) == 1
    assert ledger_true(app) == []


def test_twenty_threads_approving_and_sending_make_one_transfer(app, earned, stripe_fake):
    [payout_id] = propose(app)
    people = [coordinator(app, f"c{n}") for n in range(20)]
    barrier = threading.Barrier(20)
    errors = []

    def race(account_id):
        with app.app_context():
            barrier.wait()
            try:
                approvals.approve(payout_id, db.session.get(Account, account_id))
            except Conflict:
                pass
            except Exception as error:  # anything else fails the test below
                errors.append(error)
            sending.send(payout_id)

    threads = [threading.Thread(target=race, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(stripe_fake.calls("POST /v1/transfers")) == 1
    assert payout_row(app, payout_id).status == "paid"
    assert ledger_true(app) == []


def test_a_reward_on_hold_is_never_paid(app, earned, stripe_fake):
    with app.app_context():
        held = db.session.scalars(select(Reward).filter_by(customer_id=earned)).first()
        ledger.move(held, "on_hold", from_="available", held_from="available")
        db.session.commit()
        held_id = held.id
    [payout_id] = propose(app)
    assert payout_row(app, payout_id).amount == 1000
    approve(app, payout_id, coordinator(app))
    with app.app_context():
        assert db.session.get(Reward, held_id).status == "on_hold"
        assert db.session.scalar(select(func.count(Reward.id)).filter_by(status="paid")) == 1


def test_store_credit_goes_to_the_customers_own_stripe_balance(app, earned, stripe_fake):
    with app.app_context():
        customer = db.session.get(Customer, earned)
        customer.payout_method, customer.stripe_customer_id = "store_credit", "cus_ref1"
        db.session.commit()
    [payout_id] = propose(app)
    approve(app, payout_id, coordinator(app))
    [call] = stripe_fake.calls("POST /v1/customers/cus_ref1/balance_transactions")
    assert call.params["amount"] == -2000 and call.idempotency_key == f"payout-{payout_id}"
    assert payout_row(app, payout_id).status == "paid"


def test_manual_payouts_wait_for_a_reference(app, earned, stripe_fake):
    with app.app_context():
        db.session.get(Customer, earned).payout_method = "manual"
        db.session.commit()
    [payout_id] = propose(app)
    approve(app, payout_id, coordinator(app))
    assert payout_row(app, payout_id).status == "approved"
    with app.app_context():
        account = db.session.get(Account, coordinator(app, "carl"))
        with pytest.raises(Exception, match="reference"):
            approvals.mark_paid(payout_id, account, " ")
        approvals.mark_paid(payout_id, account, "SEPA-2026-001")
    row = payout_row(app, payout_id)
    assert (row.status, row.reference) == ("paid", "SEPA-2026-001")
    assert stripe_fake.requests == []
    assert ledger_true(app) == []
