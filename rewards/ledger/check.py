"""`flask rewards check-ledger`: the money invariants, recomputed from the lines.

Each breach is one sentence naming what is wrong; an empty list means the ledger is true.
"""

from collections import defaultdict

from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import (
    BALANCE_COLUMNS,
    PAID_REWARDS,
    Adjustment,
    Balance,
    Conversion,
    Refund,
    Reward,
)


def _recomputed_balances() -> dict[tuple[int, str], dict[str, int]]:
    totals: dict[tuple[int, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys((*BALANCE_COLUMNS, "owed"), 0))
    rows = db.session.execute(
        select(Reward.customer_id, Reward.currency, Reward.status,
               func.sum(Reward.amount - Reward.reversed_amount))
        .where(Reward.status.in_(BALANCE_COLUMNS))
        .group_by(Reward.customer_id, Reward.currency, Reward.status))
    for customer_id, currency, status, amount in rows:
        totals[(customer_id, currency)][status] += int(amount)
    owed = db.session.execute(
        select(Adjustment.customer_id, Adjustment.currency, func.sum(-Adjustment.amount))
        .where(Adjustment.kind == "clawback", Adjustment.status == "owed")
        .group_by(Adjustment.customer_id, Adjustment.currency))
    for customer_id, currency, amount in owed:
        totals[(customer_id, currency)]["owed"] += int(amount)
    return totals


def _balance_breaches() -> list[str]:
    breaches = []
    expected = _recomputed_balances()
    stored = {(b.customer_id, b.currency): b.as_dict() for b in db.session.scalars(select(Balance))}
    for key in sorted(set(expected) | set(stored)):
        want = expected.get(key, dict.fromkeys((*BALANCE_COLUMNS, "owed"), 0))
        have = stored.get(key, dict.fromkeys(want, 0))
        for column, amount in want.items():
            if have[column] != amount:
                breaches.append(
                    f"customer {key[0]} {key[1]}: balance {column} is {have[column]} "
                    f"but the lines sum to {amount}.")
    return breaches


def _reward_breaches() -> list[str]:
    breaches = []
    reversals = dict(db.session.execute(
        select(Adjustment.reward_id, func.sum(-Adjustment.amount))
        .where(Adjustment.kind == "reversal").group_by(Adjustment.reward_id)).all())
    clawbacks = dict(db.session.execute(
        select(Adjustment.reward_id, func.sum(-Adjustment.amount))
        .where(Adjustment.kind == "clawback").group_by(Adjustment.reward_id)).all())
    late_reversals = set(db.session.scalars(
        select(Adjustment.reward_id).join(Reward, Reward.id == Adjustment.reward_id)
        .where(Adjustment.kind == "reversal", Reward.paid_at.is_not(None),
               Adjustment.created_at > Reward.paid_at)))
    for reward in db.session.scalars(select(Reward).order_by(Reward.id)):
        name = f"reward {reward.id}"
        if reward.reversed_amount != int(reversals.get(reward.id, 0)):
            breaches.append(f"{name}: reversed {reward.reversed_amount} but its reversal "
                            f"lines sum to {int(reversals.get(reward.id, 0))}.")
        if reward.status == "reversed" and reward.reversed_amount != reward.amount:
            breaches.append(f"{name}: marked reversed with {reward.net_amount} not reversed.")
        paid = reward.status == "paid"
        if paid and (reward.paid_amount is None or reward.paid_at is None
                     or reward.payout_id is None):
            breaches.append(f"{name}: paid without a payout, amount or time recorded.")
        if not paid and reward.paid_at is not None:
            breaches.append(f"{name}: has a payment time but is {reward.status}.")
        if paid and reward.paid_amount is not None and reward.paid_amount != reward.net_amount:
            breaches.append(f"{name}: changed after payment (paid {reward.paid_amount}, "
                            f"now {reward.net_amount}).")
        if reward.id in late_reversals:
            breaches.append(f"{name}: reversed after payment instead of clawed back.")
        clawed = int(clawbacks.get(reward.id, 0))
        # In a payout being sent, the clawback is against what that payout will pay.
        paid_out = reward.paid_amount if paid else reward.net_amount
        if clawed > (paid_out or 0):
            breaches.append(f"{name}: clawbacks of {clawed} exceed the {paid_out or 0} paid.")
        if clawed and reward.status not in PAID_REWARDS:
            breaches.append(f"{name}: clawed back but never paid.")
    return breaches


def _conversion_breaches() -> list[str]:
    breaches = []
    refunded = dict(db.session.execute(
        select(Refund.conversion_id, func.sum(Refund.amount)).group_by(Refund.conversion_id)
    ).all())
    for conversion in db.session.scalars(select(Conversion).where(
            Conversion.refunded_amount > 0)):
        if conversion.refunded_amount != int(refunded.get(conversion.id, 0)):
            breaches.append(f"purchase {conversion.order_id}: refunded {conversion.refunded_amount}"
                            f" but its refunds sum to {int(refunded.get(conversion.id, 0))}.")
    mismatched = db.session.scalars(
        select(Reward.id).join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Reward.currency != Conversion.currency))
    breaches += [f"reward {rid}: its currency differs from its purchase's." for rid in mismatched]
    return breaches


def check_ledger() -> list[str]:
    try:
        return _balance_breaches() + _reward_breaches() + _conversion_breaches()
    finally:
        db.session.rollback()
