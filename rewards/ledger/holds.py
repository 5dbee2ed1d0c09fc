"""Holding and releasing rewards: the rule of what holds a reward, one path that holds and
one that releases.

A pending or available reward is held (`on_hold`, remembering where it was) while its
referral has a fraud signal awaiting review or its purchase has an open card dispute; a
rejected signal rejects it instead. Once nothing holds it, it goes back where it was, or to
available when its hold window (`available_at`) ended meanwhile. `verdict` is that rule;
every change of a reward's hold goes through `_follow`. Nothing here commits.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import exists, select

from rewards.extensions import db
from rewards.ledger import lines
from rewards.models import (
    HOLDABLE,
    Conversion,
    Dispute,
    FraudSignal,
    Program,
    Referral,
    Reward,
    utcnow,
)

HELD = "held"
REJECTED = "rejected"


def verdict(rejected: bool, flagged: bool, disputed: bool) -> str | None:
    """REJECTED when a coordinator rejected a signal of the reward's referral; HELD when one
    awaits review or a card dispute on its purchase is open; None when nothing holds it."""
    return REJECTED if rejected else (HELD if flagged or disputed else None)


def verdict_columns(referral_id, conversion_id) -> tuple:
    """`verdict`'s three facts as columns of a query; the ids are values, or columns of the
    query's own rows (a referral id of None matches no signal)."""
    signals = (FraudSignal.referral_id == referral_id,)
    return (exists().where(*signals, FraudSignal.status == "rejected"),
            exists().where(*signals, FraudSignal.status == "open"),
            exists().where(Dispute.conversion_id == conversion_id, Dispute.status == "open"))


def purchase_verdict(conversion: Conversion) -> str | None:
    """The verdict on a purchase's rewards, in one query."""
    return verdict(*db.session.execute(
        select(*verdict_columns(conversion.referral_id, conversion.id))).one())


def new_reward_status(status: str, under: str | None) -> tuple[str, str | None]:
    """(status, held_from) for a reward added under a verdict: the state that holding it
    would leave (on hold, remembering `status`), or rejected."""
    if under == HELD:
        return "on_hold", status
    return ("rejected" if under == REJECTED else status), None


# --- the two paths ---------------------------------------------------------------------------

def _release_to(reward: Reward, now: datetime) -> str:
    """Where a held reward goes once nothing holds it."""
    back = reward.held_from or "pending"
    return "available" if back == "pending" and reward.available_at <= now else back


def _follow(rows: Iterable[tuple[Reward, str | None]]) -> int:
    """Move each reward as its verdict says: rejected (if unpaid), held (if pending or
    available), or released (if on hold). Returns how many moved."""
    now = utcnow()
    rejected, held, released = [], [], []
    for reward, under in rows:
        if under == REJECTED:
            rejected.append((reward, "rejected", (*HOLDABLE, "on_hold"), {"held_from": None}))
        elif under == HELD:
            held.append(reward)
        elif reward.status == "on_hold":
            released.append((reward, _release_to(reward, now), "on_hold", {"held_from": None}))
    return lines.move_many(rejected) + lines.hold_many(held) + lines.move_many(released)


def _with_verdicts(*where) -> list[tuple[Reward, str | None]]:
    """The rewards matching `where` (joined to their purchase), each with its verdict, in
    one query, oldest first."""
    rows = db.session.execute(
        select(Reward, *verdict_columns(Conversion.referral_id, Conversion.id))
        .join(Conversion, Conversion.id == Reward.conversion_id)
        .where(*where).order_by(Reward.id)
        .execution_options(populate_existing=True)).all()
    return [(reward, verdict(*facts)) for reward, *facts in rows]


# --- by purchase (a card dispute, a reward computed after a refund) ------------------------

def _lock_customers_of(conversion_id: int, statuses: tuple[str, ...]) -> None:
    """Lock the balances of the customers rewarded for the purchase, in order."""
    for customer_id, currency in db.session.execute(
            select(Reward.customer_id, Reward.currency).distinct()
            .where(Reward.conversion_id == conversion_id, Reward.status.in_(statuses))
            .order_by(Reward.customer_id, Reward.currency)).all():
        lines.lock_balance(customer_id, currency)


def hold_purchase(conversion_id: int) -> int:
    """Apply the verdict to the purchase's pending and available rewards (a dispute opened,
    or a flagged referral's reward computed after a refund). Returns how many moved."""
    _lock_customers_of(conversion_id, HOLDABLE)
    return _follow(_with_verdicts(Reward.conversion_id == conversion_id,
                                  Reward.status.in_(HOLDABLE)))


def release_purchase(conversion_id: int) -> int:
    """Apply the verdict to the purchase's held rewards (its dispute closed): released
    unless a signal or another dispute still holds them. Returns how many moved."""
    _lock_customers_of(conversion_id, ("on_hold",))
    return _follow(_with_verdicts(Reward.conversion_id == conversion_id,
                                  Reward.status == "on_hold"))


# --- by referral (fraud signals raised, cleared or rejected) -------------------------------

def lock_referrers(referrals: list[Referral]) -> None:
    """Serialise with reward computation for these referrals' referrers (which locks the
    referrer's balance first): each referrer's balance in the program's currency and in
    those of the referrals' purchases, locked in order. A reward computed meanwhile either
    sees the signal or is seen by the hold."""
    referrer_of = {referral.id: referral.referrer_id for referral in referrals}
    currency_of = dict(db.session.execute(
        select(Program.id, Program.currency)
        .where(Program.id.in_({referral.program_id for referral in referrals}))).all())
    locks = {(referral.referrer_id, currency_of.get(referral.program_id))
             for referral in referrals}
    locks |= {(referrer_of[referral_id], currency) for referral_id, currency in
              db.session.execute(select(Conversion.referral_id, Conversion.currency)
                                 .where(Conversion.referral_id.in_(list(referrer_of)))
                                 .distinct())}
    for referrer_id, currency in sorted(lock for lock in locks if lock[1]):
        lines.lock_balance(referrer_id, currency)


def hold_referrals(referral_ids: Iterable[int]) -> int:
    """New signals: the referrals' pending and available rewards (of every purchase) go on
    hold, or are rejected under a rejected signal. Returns how many moved."""
    ids = list(dict.fromkeys(referral_ids))
    if not ids:
        return 0
    referrals = list(db.session.scalars(select(Referral).where(Referral.id.in_(ids))))
    if not referrals:
        return 0
    lock_referrers(referrals)
    return _follow(_with_verdicts(Conversion.referral_id.in_(ids),
                                  Reward.status.in_(HOLDABLE)))


def settle_referral(referral_id: int) -> int:
    """A signal of the referral was decided (its referrer already locked): its unpaid
    rewards follow the verdict now. Cleared: the held ones are released unless another
    signal or a dispute holds them; rejected: they are rejected. Returns how many moved."""
    return _follow(_with_verdicts(Conversion.referral_id == referral_id,
                                  Reward.status.in_((*HOLDABLE, "on_hold"))))


# --- the hold window ---------------------------------------------------------------------------

def release_due(now: datetime | None = None, limit: int = 5000) -> int:
    """pending -> available for rewards whose hold window has ended (the sweep). A reward on
    hold stays held; it is made available when it is released. Returns how many moved."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Reward).where(Reward.status == "pending", Reward.available_at <= now)
        .order_by(Reward.id).limit(limit)).all()
    return lines.move_many([(reward, "available", "pending", {}) for reward in due])
