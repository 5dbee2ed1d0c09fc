"""Moving money through the rewards ledger: every change a compare-and-set, every
change mirrored in the customer's balance in the same transaction.

Nothing here commits: the calling service owns the transaction.
"""

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import BALANCE_COLUMNS, Adjustment, Balance, Reward, utcnow
from .rollups import touch


def ensure_balance(customer_id: int, currency: str) -> None:
    """Make sure the balance row exists (an insert that does nothing when it does)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(Balance)
        .values(customer_id=customer_id, currency=currency, pending=0, on_hold=0,
                available=0, in_payout=0, paid=0, owed=0)
        .on_conflict_do_nothing(index_elements=["customer_id", "currency"])
    )


def lock_balance(customer_id: int, currency: str) -> None:
    """Serialise ledger work for one customer and currency until the transaction ends.

    An UPDATE that changes nothing still takes the row lock on PostgreSQL and the write
    lock on SQLite, where `SELECT ... FOR UPDATE` would be silently ignored.
    """
    ensure_balance(customer_id, currency)
    db.session.execute(
        update(Balance)
        .where(Balance.customer_id == customer_id, Balance.currency == currency)
        .values(pending=Balance.pending)
    )


def shift_balance(customer_id: int, currency: str, **deltas: int) -> None:
    """Add the deltas (by column) to the customer's balance, atomically."""
    deltas = {column: delta for column, delta in deltas.items() if delta}
    if not deltas:
        return
    ensure_balance(customer_id, currency)
    db.session.execute(
        update(Balance)
        .where(Balance.customer_id == customer_id, Balance.currency == currency)
        .values({getattr(Balance, c): getattr(Balance, c) + d for c, d in deltas.items()})
    )


def _column(status: str) -> str | None:
    return status if status in BALANCE_COLUMNS else None


def move(reward: Reward, to: str, *, from_: str | Iterable[str] | None = None,
         **values) -> bool:
    """Compare-and-set the reward from its current status (or one of `from_`) to `to`.

    Returns False, changing nothing, when another transaction moved it first.
    """
    allowed = [reward.status] if from_ is None else (
        [from_] if isinstance(from_, str) else list(from_))
    current = reward.status
    if current not in allowed:
        return False
    changed = db.session.execute(
        update(Reward)
        .where(Reward.id == reward.id, Reward.status == current,
               Reward.reversed_amount == reward.reversed_amount)
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        db.session.expire(reward)
        return False
    touch(reward.program_id, reward.occurred_at)
    net = reward.amount - reward.reversed_amount
    deltas: dict[str, int] = {}
    if _column(current):
        deltas[current] = -net
    if _column(to):
        deltas[to] = deltas.get(to, 0) + net
    shift_balance(reward.customer_id, reward.currency, **deltas)
    db.session.expire(reward)
    return True


def add_reward(reward: Reward) -> None:
    """Insert a new reward line (flushed) and count it in the balance."""
    db.session.add(reward)
    db.session.flush()
    touch(reward.program_id, reward.occurred_at)
    column = _column(reward.status)
    if column:
        shift_balance(reward.customer_id, reward.currency, **{column: reward.amount})


def reverse_part(reward: Reward, amount: int, *, refund_id: int, explanation: str) -> bool:
    """Reverse `amount` of an unpaid reward with a negative line; the whole of it makes the
    reward `reversed`. Compare-and-set on (status, reversed_amount)."""
    status, before = reward.status, reward.reversed_amount
    after = before + amount
    fully = after == reward.amount
    changed = db.session.execute(
        update(Reward)
        .where(Reward.id == reward.id, Reward.status == status,
               Reward.reversed_amount == before)
        .values(reversed_amount=after, status="reversed" if fully else status)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        db.session.expire(reward)
        return False
    touch(reward.program_id, reward.occurred_at)
    db.session.add(Adjustment(reward_id=reward.id, customer_id=reward.customer_id,
                              refund_id=refund_id, kind="reversal", amount=-amount,
                              currency=reward.currency, status="applied",
                              explanation=explanation))
    column = _column(status)
    if column:
        shift_balance(reward.customer_id, reward.currency, **{column: -amount})
    db.session.expire(reward)
    return True


def claw_back(reward: Reward, amount: int, *, refund_id: int, explanation: str) -> None:
    """After payment the reward stays as paid; what is owed back is a new negative line."""
    touch(reward.program_id, reward.occurred_at)
    db.session.add(Adjustment(reward_id=reward.id, customer_id=reward.customer_id,
                              refund_id=refund_id, kind="clawback", amount=-amount,
                              currency=reward.currency, status="owed",
                              explanation=explanation))
    shift_balance(reward.customer_id, reward.currency, owed=amount)


def release_due(now=None, limit: int = 5000) -> int:
    """pending -> available for rewards whose hold has ended. Returns how many moved."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Reward).where(Reward.status == "pending", Reward.available_at <= now)
        .order_by(Reward.id).limit(limit)
    ).all()
    return sum(move(reward, "available", from_="pending") for reward in due)


def reserve(reward: Reward, payout_id: int) -> bool:
    """available -> in_payout, inside the payout `payout_id`."""
    return move(reward, "in_payout", from_="available", payout_id=payout_id)


def settle(reward: Reward) -> bool:
    """in_payout -> paid, recording what was paid; a paid reward never changes again."""
    return move(reward, "paid", from_="in_payout", paid_amount=reward.net_amount,
                paid_at=utcnow())


def unreserve(reward: Reward, to: str = "available") -> bool:
    """A payout that will not be sent gives its rewards back (or rejects them for good)."""
    return move(reward, to, from_="in_payout", payout_id=None)
