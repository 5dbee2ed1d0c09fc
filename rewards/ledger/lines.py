"""Moving money through the rewards ledger: every change a compare-and-set, every
change mirrored in the customer's balance in the same transaction.

Nothing here commits: the calling service owns the transaction.
"""

from collections.abc import Iterable

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from rewards.analytics.rollups import touch
from rewards.extensions import db
from rewards.models import BALANCE_COLUMNS, HOLDABLE, Adjustment, Balance, Reward, utcnow


def _upsert_balance(customer_id: int, currency: str, deltas: dict[str, int]) -> None:
    """Insert the balance row with these amounts, or add them to the row there is (insert
    ... on conflict do update): one statement, which takes the row's lock on PostgreSQL
    (the write lock on SQLite) like an UPDATE. No deltas: the row is only locked."""
    _upsert_balances({(customer_id, currency): deltas})


_AMOUNTS = (*BALANCE_COLUMNS, "owed")
_UPSERTS: dict[str, object] = {}


def _balance_upsert(dialect: str):
    """insert ... on conflict do update adding every amount column, built once per dialect:
    one statement shape whatever the deltas (zero for the others), so SQLAlchemy compiles
    it once and caches it."""
    if dialect not in _UPSERTS:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = Balance.__table__
        statement = insert(table).values(
            {name: bindparam(name) for name in ("customer_id", "currency", *_AMOUNTS)})
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=["customer_id", "currency"],
            set_={name: table.c[name] + statement.excluded[name] for name in _AMOUNTS})
    return _UPSERTS[dialect]


def _upsert_balances(shifts: dict[tuple[int, str], dict[str, int]]) -> None:
    """`_upsert_balance` for several balances (distinct keys), the rows in the order given."""
    if not shifts:
        return
    zero = dict.fromkeys(_AMOUNTS, 0)
    rows = [{"customer_id": customer_id, "currency": currency, **zero, **deltas}
            for (customer_id, currency), deltas in shifts.items()]
    statement = _balance_upsert(db.session.get_bind().dialect.name)
    db.session.execute(statement, rows if len(rows) > 1 else rows[0])


class _Effects:
    """What a set of reward changes does beside the rows themselves: the days they mark for
    the rollups and what they add to each balance, applied together (one rollup statement
    per program, one balance upsert per customer and currency)."""

    def __init__(self):
        self.days: dict[int, list] = {}
        self.shifts: dict[tuple[int, str], dict[str, int]] = {}

    def add(self, program_id: int, occurred_at, customer_id: int, currency: str,
            **deltas: int) -> None:
        self.days.setdefault(program_id, []).append(occurred_at)
        shift = self.shifts.setdefault((customer_id, currency), {})
        for column, delta in deltas.items():
            if _column(column):
                shift[column] = shift.get(column, 0) + delta

    def apply(self) -> None:
        for program_id, moments in self.days.items():
            touch(program_id, *moments)
        _upsert_balances({key: {column: delta for column, delta in shift.items() if delta}
                          for key, shift in self.shifts.items() if any(shift.values())})


def lock_balance(customer_id: int, currency: str) -> None:
    """Serialise ledger work for one customer and currency until the transaction ends.

    A write that changes nothing (an upsert adding the row when it is missing) still takes
    the row lock on PostgreSQL and the write lock on SQLite, where
    `SELECT ... FOR UPDATE` would be silently ignored.
    """
    _upsert_balance(customer_id, currency, {})


def shift_balance(customer_id: int, currency: str, **deltas: int) -> None:
    """Add the deltas (by column) to the customer's balance, atomically (one statement,
    adding the row when it is missing)."""
    deltas = {column: delta for column, delta in deltas.items() if delta}
    if not deltas:
        return
    _upsert_balance(customer_id, currency, deltas)


def _shift(from_: str, to: str, net: int) -> dict[str, int]:
    """The balance deltas of `net` moving from one status to another."""
    deltas = {from_: -net}
    deltas[to] = deltas.get(to, 0) + net
    return deltas


def _column(status: str) -> str | None:
    return status if status in BALANCE_COLUMNS else None


def move(reward: Reward, to: str, *, from_: str | Iterable[str] | None = None,
         **values) -> bool:
    """Compare-and-set the reward from its current status (or one of `from_`) to `to`.

    Returns False, changing nothing, when another transaction moved it first.
    """
    return move_many([(reward, to, from_, values)]) == 1


def move_many(moves: Iterable[tuple[Reward, str, str | Iterable[str] | None, dict]]) -> int:
    """`move` for each (reward, to, from_, values): each reward a compare-and-set of its
    own, in order; then the days of those that moved are marked and their balances shifted,
    one statement per day and per balance. Returns how many moved."""
    effects = _Effects()
    moved = 0
    for reward, to, from_, values in moves:
        allowed = [reward.status] if from_ is None else (
            [from_] if isinstance(from_, str) else list(from_))
        current = reward.status
        if current not in allowed:
            continue
        changed = db.session.execute(
            update(Reward)
            .where(Reward.id == reward.id, Reward.status == current,
                   Reward.reversed_amount == reward.reversed_amount)
            .values(status=to, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            db.session.expire(reward)
            continue
        moved += 1
        net = reward.amount - reward.reversed_amount
        effects.add(reward.program_id, reward.occurred_at, reward.customer_id,
                    reward.currency, **_shift(current, to, net))
        db.session.expire(reward)
    effects.apply()
    return moved


def hold_many(rewards: list[Reward]) -> int:
    """pending or available -> on_hold for each reward, remembering where it was in
    `held_from`: one compare-and-set statement for all (a reward another transaction moved
    meanwhile is left alone), then their days marked and their balances shifted together
    by what each row held. Returns how many moved."""
    if not rewards:
        return 0
    table = Reward.__table__
    moved = db.session.execute(
        update(table)
        .where(table.c.id.in_([reward.id for reward in rewards]),
               table.c.status.in_(HOLDABLE))
        # held_from takes the status as it was: SET reads the row before the update.
        .values(held_from=table.c.status, status="on_hold")
        .returning(table.c.program_id, table.c.occurred_at, table.c.customer_id,
                   table.c.currency, table.c.held_from,
                   (table.c.amount - table.c.reversed_amount).label("net"))
    ).all()
    for reward in rewards:
        db.session.expire(reward)
    effects = _Effects()
    for program_id, occurred_at, customer_id, currency, was, net in moved:
        effects.add(program_id, occurred_at, customer_id, currency,
                    **_shift(was, "on_hold", net))
    effects.apply()
    return len(moved)


def add_reward(reward: Reward) -> None:
    """Insert a new reward line (flushed) and count it in the balance."""
    add_rewards([reward])


def add_rewards(rewards: list[Reward]) -> None:
    """Insert new reward lines (flushed together), mark their days once, and count them in
    the balances: one statement per balance, in the order the lines name them."""
    if not rewards:
        return
    db.session.add_all(rewards)
    db.session.flush()
    effects = _Effects()
    for reward in rewards:
        effects.add(reward.program_id, reward.occurred_at, reward.customer_id,
                    reward.currency, **{reward.status: reward.amount})
    effects.apply()


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
