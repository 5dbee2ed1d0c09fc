"""Holding and releasing rewards (rewards/ledger/holds.py): one rule for what holds a reward
(a fraud signal awaiting review, an open card dispute), one path that releases it, whatever
lifts the last hold. Released, a reward goes back where it was, or to available when its
hold window ended while it was held.

Before the rule was written once, a won dispute put such a reward back to pending (the sweep
made it available later) while a cleared signal made it available at once; these tests
pin the one answer."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rewards.extensions import db
from rewards.fraud import review
from rewards.ledger import holds
from rewards.ledger.check import check_ledger
from rewards.models import Account, Balance, Conversion, FraudSignal, Program, Reward, utcnow
from rewards.policies import versions
from rewards.sweep import sweep

from .stripe_kit import SECRETS, checkout, deliver, dispute

POLICY = {"currency": "usd", "hold_days": 30, "referrer": {"percent_bps": 1000}}


@pytest.fixture
def purchase(app, api, program, client, monkeypatch):
    """A referred Stripe purchase whose $10 reward waits out a 30-day hold window."""
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRETS", list(SECRETS))
    with app.app_context():
        versions.publish(db.session.get(Program, program), POLICY)
    code = api.post("/customers", {"external_id": "ref", "email": "ref@example.com"}).json[
        "referral_code"]
    assert deliver(client, checkout("evt_p", client_reference_id=code)).status_code == 200
    assert reward(app) == ("pending", None)


def reward(app) -> tuple[str, str | None]:
    with app.app_context():
        row = db.session.scalar(select(Reward))
        assert check_ledger() == []
        return row.status, row.held_from


def available_balance(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Balance.available).where(Balance.available > 0)) or 0


def end_hold_window(app) -> None:
    with app.app_context():
        db.session.execute(update(Reward).values(available_at=utcnow() - timedelta(days=1)))
        db.session.commit()


def flag(app) -> int:
    """An open fraud signal on the purchase's referral, holding its reward."""
    with app.app_context():
        conversion = db.session.scalar(select(Conversion))
        signal = FraudSignal(program_id=conversion.program_id,
                             referral_id=conversion.referral_id, kind="velocity",
                             conversion_key=0, detail="11 signups on one code within an hour.",
                             status="open", created_at=utcnow())
        db.session.add(signal)
        db.session.flush()
        holds.hold_referrals([conversion.referral_id])
        db.session.commit()
        return signal.id


def open_dispute(client) -> None:
    assert deliver(client, dispute("evt_dc", "charge.dispute.created")).status_code == 200


def win_dispute(client) -> None:
    assert deliver(client, dispute("evt_dx", "charge.dispute.closed", status="won")) \
        .status_code == 200


def decide(app, make_user, signal_id: int, how: str) -> None:
    email = make_user("coordinator")
    with app.app_context():
        account = db.session.scalar(select(Account).filter_by(email=email))
        if how == "clear":
            review.clear(signal_id, account)
        else:
            review.reject(signal_id, account, "The friend is the referrer.")


@pytest.mark.parametrize("lift", ["dispute won", "signal cleared"])
def test_a_hold_lifted_inside_the_window_puts_the_reward_back_to_pending(
        app, client, purchase, make_user, lift):
    if lift == "dispute won":
        open_dispute(client)
        assert reward(app) == ("on_hold", "pending")
        win_dispute(client)
    else:
        signal_id = flag(app)
        assert reward(app) == ("on_hold", "pending")
        decide(app, make_user, signal_id, "clear")
    assert reward(app) == ("pending", None)


@pytest.mark.parametrize("lift", ["dispute won", "signal cleared"])
def test_a_hold_lifted_after_the_window_ended_makes_the_reward_available_at_once(
        app, client, purchase, make_user, lift):
    signal_id = None
    if lift == "dispute won":
        open_dispute(client)
    else:
        signal_id = flag(app)
    end_hold_window(app)
    with app.app_context():
        assert sweep()["rewards_released"] == 0  # the window ended, but the hold stands
    assert reward(app) == ("on_hold", "pending")
    if lift == "dispute won":
        win_dispute(client)
    else:
        decide(app, make_user, signal_id, "clear")
    assert reward(app) == ("available", None)
    assert available_balance(app) == 1000


@pytest.mark.parametrize("first", ["dispute won", "signal cleared"])
def test_the_reward_stays_held_until_the_last_hold_is_lifted(
        app, client, purchase, make_user, first):
    signal_id = flag(app)
    open_dispute(client)
    end_hold_window(app)
    lifts = {"dispute won": lambda: win_dispute(client),
             "signal cleared": lambda: decide(app, make_user, signal_id, "clear")}
    lifts.pop(first)()
    assert reward(app) == ("on_hold", "pending")  # the other hold still stands
    lifts.popitem()[1]()
    assert reward(app) == ("available", None)


def test_a_rejected_signal_rejects_the_reward_that_a_dispute_also_holds(
        app, client, purchase, make_user):
    signal_id = flag(app)
    open_dispute(client)
    decide(app, make_user, signal_id, "reject")
    assert reward(app) == ("rejected", None)
    win_dispute(client)
    assert reward(app) == ("rejected", None)


def test_the_sweep_makes_a_pending_reward_available_when_its_window_ends(
        app, client, purchase):
    end_hold_window(app)
    with app.app_context():
        assert sweep()["rewards_released"] == 1
    assert reward(app) == ("available", None)
