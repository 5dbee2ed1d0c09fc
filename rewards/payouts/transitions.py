"""A payout's state changes: each a compare-and-set (`UPDATE ... WHERE status IN from`),
and settling a paid one with its rewards. Nothing here commits."""

from sqlalchemy import select, update

from rewards.errors import Conflict, NotFound
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.models import Payout, Reward, utcnow

AUDITED = ("status", "amount", "currency", "method", "reference", "failure_reason",
           "rejection_reason", "stripe_object_id")


def get_payout(payout_id: int) -> Payout:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFound(f"No payout #{payout_id}.")
    return payout


def move(payout: Payout, to: str, from_: tuple[str, ...], **values) -> bool:
    changed = db.session.execute(
        update(Payout).where(Payout.id == payout.id, Payout.status.in_(from_))
        .values(status=to, **values).execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(payout)
    return changed == 1


def settle(payout: Payout, **values) -> None:
    ledger.lock_balance(payout.customer_id, payout.currency)
    if not move(payout, "paid", ("processing",), paid_at=utcnow(), **values):
        raise Conflict(f"Payout #{payout.id} changed while it was being recorded as paid.")
    for reward in db.session.scalars(select(Reward).filter_by(payout_id=payout.id,
                                                              status="in_payout")).all():
        if not ledger.settle(reward):
            raise Conflict(f"A reward of payout #{payout.id} changed while it was paid.")
