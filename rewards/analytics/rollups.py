"""Keeping the daily rollups equal to a recount of the raw rows.

Writers call `touch` in their own transaction for every program day they change (a click,
a signup, a purchase, a refund, a reward changing status). `refresh` — run by the worker
every few seconds, by `sweep`, and by the dashboard before it reads — recounts each
touched day from the raw rows and replaces its rollup rows. A day is recounted whole, so
there is no running total to drift; `rebuild` recounts every day (the CLI's
`rebuild-rollups`).

Marks are only ever inserted by writers. The refresh deletes a day's marks up to the
highest id it saw before recounting, so a mark committed meanwhile survives for the next
refresh. Refreshes take a lock before they read (an advisory lock on PostgreSQL, the
write lock on SQLite), so two never recount the same day at once and none writes an older
count over a newer one.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, and_, case, cast, delete, exists, func, insert, or_, select, text
from sqlalchemy.orm import aliased

from rewards.analytics import sketches, tallies
from rewards.extensions import db
from rewards.models import Adjustment, Click, Conversion, Referral, Reward, Signup
from rewards.models.rollups import (
    DailyChannel,
    DailyHost,
    DailyReferrerTally,
    DailyRewards,
    DailySales,
    DailyTraffic,
    RollupMark,
)

ROLLUP_TABLES = (DailyTraffic, DailySales, DailyRewards, DailyReferrerTally, DailyHost,
                 DailyChannel)
_LOCK_KEY = 0x726F6C6C  # "roll": the advisory lock refreshes take on PostgreSQL
# Days recounted per statement by `rebuild`: one month of raw rows at a time.
_REBUILD_SPAN = 31


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


# --- Marking -------------------------------------------------------------------------------

def _mark(days: Iterable[tuple[int, date]]) -> None:
    # A Core insert of the table: the ORM's bulk insert path costs more than the row.
    db.session.execute(insert(RollupMark.__table__),
                       [{"program_id": p, "day": d} for p, d in sorted(days)])


def touch(program_id: int, *moments: datetime) -> None:
    """Mark the program's days of these moments as changed (in the caller's transaction)."""
    days = {(program_id, day_of(moment)) for moment in moments if moment is not None}
    if days:
        _mark(days)


def touch_clicks(rows: Iterable[dict]) -> None:
    days = {(row["program_id"], day_of(row["created_at"])) for row in rows}
    if days:
        _mark(days)


def touch_purchase(conversion: Conversion, *, buyer_is_new: bool = False) -> None:
    """The purchase's day; the day of the buyer's other first referred purchase (a new
    earlier purchase, or a late attribution, changes which one acquired the customer); and
    the day the buyer signed up, whose signups may now count as converted.

    buyer_is_new: the buyer was added in the caller's transaction, so has no other purchase
    and no signup to look for: only the purchase's day is marked."""
    if buyer_is_new:
        touch(conversion.program_id, conversion.occurred_at)
        return
    first = db.session.scalar(
        select(func.min(Conversion.occurred_at)).where(
            Conversion.customer_id == conversion.customer_id,
            Conversion.referrer_id.is_not(None), Conversion.id != conversion.id))
    signed_up = db.session.scalar(
        select(Signup.created_at).where(Signup.customer_id == conversion.customer_id))
    touch(conversion.program_id, conversion.occurred_at, first, signed_up)


# --- Recounting ----------------------------------------------------------------------------

def _day_column(column):
    """The UTC day of a stored timestamp (stored naive UTC on both databases)."""
    if db.session.get_bind().dialect.name == "sqlite":
        return func.date(column)
    return cast(column, Date)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _between(column, start: date, end: date):
    return and_(column >= day_start(start), column < day_start(end))


def _count_traffic(program_id: int, start: date, end: date) -> list[dict]:
    rows: dict[date, dict] = defaultdict(lambda: {"clicks": 0, "signups": 0,
                                                  "referred_signups": 0, "clicked_signups": 0,
                                                  "converted_signups": 0, "ids": []})
    day = _day_column(Click.created_at)
    for value, visitor, clicks in db.session.execute(
        select(day, Click.visitor_id, func.count())
        .where(Click.program_id == program_id, _between(Click.created_at, start, end))
        .group_by(day, Click.visitor_id)
    ):
        row = rows[_as_date(value)]
        row["clicks"] += clicks
        row["ids"].append(visitor)
    day = _day_column(Signup.created_at)
    bought = exists().where(Conversion.customer_id == Signup.customer_id,
                            Conversion.referrer_id.is_not(None))
    for value, signups, referred, clicked, converted in db.session.execute(
        select(day, func.count(), func.count(Signup.referral_id), func.count(Referral.click_id),
               func.sum(case((and_(Signup.referral_id.is_not(None), bought), 1), else_=0)))
        .outerjoin(Referral, Referral.id == Signup.referral_id)
        .where(Signup.program_id == program_id, _between(Signup.created_at, start, end))
        .group_by(day)
    ):
        rows[_as_date(value)].update(signups=signups, referred_signups=referred,
                                     clicked_signups=clicked, converted_signups=int(converted))
    return [{"program_id": program_id, "day": d, "clicks": r["clicks"],
             "visitors": sketches.sketch(r["ids"]), "signups": r["signups"],
             "referred_signups": r["referred_signups"],
             "clicked_signups": r["clicked_signups"],
             "converted_signups": r["converted_signups"]} for d, r in rows.items()]


def _referred_purchases(program_id: int, start: date, end: date):
    return (Conversion.program_id == program_id, Conversion.referrer_id.is_not(None),
            _between(Conversion.occurred_at, start, end))


def _count_sales(program_id: int, start: date, end: date) -> list[dict]:
    earlier = aliased(Conversion)
    is_first = ~exists().where(
        earlier.customer_id == Conversion.customer_id, earlier.referrer_id.is_not(None),
        or_(earlier.occurred_at < Conversion.occurred_at,
            and_(earlier.occurred_at == Conversion.occurred_at, earlier.id < Conversion.id)))
    day = _day_column(Conversion.occurred_at)
    return [
        {"program_id": program_id, "day": _as_date(value), "currency": currency,
         "purchases": purchases, "new_customers": int(new or 0), "revenue": int(revenue),
         "refunded": int(refunded)}
        for value, currency, purchases, new, revenue, refunded in db.session.execute(
            select(day, Conversion.currency, func.count(),
                   func.sum(case((is_first, 1), else_=0)),
                   func.sum(Conversion.amount), func.sum(Conversion.refunded_amount))
            .where(*_referred_purchases(program_id, start, end))
            .group_by(day, Conversion.currency)
        )
    ]


def _count_referrers(program_id: int, start: date, end: date) -> list[dict]:
    day = _day_column(Conversion.occurred_at)
    days: dict[tuple[date, str], list] = defaultdict(list)
    for value, referrer, currency, purchases, revenue in db.session.execute(
        select(day, Conversion.referrer_id, Conversion.currency, func.count(),
               func.sum(Conversion.amount - Conversion.refunded_amount))
        .where(*_referred_purchases(program_id, start, end))
        .group_by(day, Conversion.referrer_id, Conversion.currency)
    ):
        days[(_as_date(value), currency)].append((referrer, purchases, int(revenue)))
    return [{"program_id": program_id, "day": d, "currency": currency,
             "tally": tallies.pack(rows)} for (d, currency), rows in days.items()]


def _count_rewards(program_id: int, start: date, end: date) -> list[dict]:
    day = _day_column(Reward.occurred_at)
    where = (Reward.program_id == program_id, _between(Reward.occurred_at, start, end))
    rows = {
        (_as_date(value), currency, status): {
            "program_id": program_id, "day": _as_date(value), "currency": currency,
            "status": status, "rewards": n, "amount": int(amount),
            "reversed": int(reversed_), "clawed_back": 0}
        for value, currency, status, n, amount, reversed_ in db.session.execute(
            select(day, Reward.currency, Reward.status, func.count(), func.sum(Reward.amount),
                   func.sum(Reward.reversed_amount))
            .where(*where).group_by(day, Reward.currency, Reward.status)
        )
    }
    for value, currency, status, clawed in db.session.execute(
        select(day, Reward.currency, Reward.status, func.sum(Adjustment.amount))
        .join(Adjustment, Adjustment.reward_id == Reward.id)
        .where(*where, Adjustment.kind == "clawback")
        .group_by(day, Reward.currency, Reward.status)
    ):
        rows[(_as_date(value), currency, status)]["clawed_back"] = -int(clawed)
    return list(rows.values())


def _clicks_by(column: str) -> Callable[[int, date, date], list[dict]]:
    """A counter of the clicks of each day by one of their columns ('' for none)."""
    key = "host" if column == "referrer_host" else column

    def count(program_id: int, start: date, end: date) -> list[dict]:
        day = _day_column(Click.created_at)
        value = func.coalesce(getattr(Click, column), "")
        return [
            {"program_id": program_id, "day": _as_date(d), key: v, "clicks": n}
            for d, v, n in db.session.execute(
                select(day, value, func.count())
                .where(Click.program_id == program_id, _between(Click.created_at, start, end))
                .group_by(day, value)
            )
        ]

    return count


_COUNTERS: tuple[tuple[type, Callable], ...] = (
    (DailyTraffic, _count_traffic), (DailySales, _count_sales),
    (DailyRewards, _count_rewards), (DailyReferrerTally, _count_referrers),
    (DailyHost, _clicks_by("referrer_host")), (DailyChannel, _clicks_by("channel")),
)


def recount(program_id: int, start: date, end: date) -> None:
    """Replace the program's rollup rows for days in [start, end) with a recount."""
    for table, counter in _COUNTERS:
        rows = counter(program_id, start, end)
        db.session.execute(delete(table).where(table.program_id == program_id,
                                               table.day >= start, table.day < end))
        if rows:
            db.session.execute(insert(table), rows)


def _lock() -> None:
    """Hold the rollups for this transaction, before reading anything to recount.

    On SQLite an UPDATE that changes nothing still starts the write transaction, so no
    other connection writes (or refreshes) until this one ends, and what it reads next
    is current.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        db.session.execute(text("UPDATE rollup_marks SET day = day WHERE id = 0"))


def refresh() -> int:
    """Recount every marked day and clear its marks; returns how many days were recounted."""
    if not db.session.scalar(select(RollupMark.id).limit(1)):
        return 0
    _lock()
    marked = db.session.execute(
        select(RollupMark.program_id, RollupMark.day, func.max(RollupMark.id))
        .group_by(RollupMark.program_id, RollupMark.day)
    ).all()
    for program_id, value, last in marked:
        day = _as_date(value)
        recount(program_id, day, day + timedelta(days=1))
        db.session.execute(delete(RollupMark).where(
            RollupMark.program_id == program_id, RollupMark.day == day,
            RollupMark.id <= last))
    db.session.commit()
    return len(marked)


def _span(program_id: int) -> tuple[date, date] | None:
    """The first and last day (inclusive) on which the program has any raw row."""
    moments = [
        db.session.scalar(select(func.min(column)).where(table.program_id == program_id))
        for table, column in ((Click, Click.created_at), (Signup, Signup.created_at),
                              (Conversion, Conversion.occurred_at),
                              (Reward, Reward.occurred_at))
    ] + [
        db.session.scalar(select(func.max(column)).where(table.program_id == program_id))
        for table, column in ((Click, Click.created_at), (Signup, Signup.created_at),
                              (Conversion, Conversion.occurred_at),
                              (Reward, Reward.occurred_at))
    ]
    days = [day_of(moment) for moment in moments if moment is not None]
    return (min(days), max(days)) if days else None


def rebuild_plan(program_ids: Iterable[int]) -> list[tuple[int, date, date]]:
    """The month-sized [start, end) pieces `rebuild` recounts, in order."""
    pieces = []
    for program_id in program_ids:
        span = _span(program_id)
        if span is None:
            continue
        start, last = span
        while start <= last:
            end = min(start + timedelta(days=_REBUILD_SPAN), last + timedelta(days=1))
            pieces.append((program_id, start, end))
            start = end
    return pieces


def rebuild(program_ids: Iterable[int],
            on_progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Recount every day of the programs from the raw rows, one committed month at a time,
    dropping rollup rows of days that no longer have raw rows. Returns days recounted;
    `on_progress(done, total)` hears of each month done."""
    program_ids = list(program_ids)
    _lock()
    for table in ROLLUP_TABLES:
        db.session.execute(delete(table).where(table.program_id.in_(program_ids)))
    seen = db.session.scalar(select(func.max(RollupMark.id)))
    if seen is not None:
        db.session.execute(delete(RollupMark).where(RollupMark.program_id.in_(program_ids),
                                                    RollupMark.id <= seen))
    db.session.commit()
    days = 0
    plan = rebuild_plan(program_ids)
    on_progress(0, len(plan))
    for done, (program_id, start, end) in enumerate(plan, 1):
        _lock()
        recount(program_id, start, end)
        db.session.commit()
        days += (end - start).days
        on_progress(done, len(plan))
    return days
