"""The coordinator's payout queue: its filters, a page of payouts with their approvals,
flags and held rewards, and the to-do counts on the coordinator's home page.

Read only: the actions are in `rewards.payouts.lifecycle` and `rewards.fraud`. One
payout's evidence is in `rewards.payouts.evidence`, the CSV in `rewards.payouts.export`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from sqlalchemy import and_, exists, false, func, or_, select, true

from rewards.extensions import db
from rewards.models import (
    LIVE_PAYOUT,
    PAYOUT_METHODS,
    PAYOUT_STATUSES,
    Conversion,
    Customer,
    FraudSignal,
    Payout,
    PayoutApproval,
    Program,
    Reward,
)
from rewards.money import DEFAULT_EXPONENT, EXPONENTS, AmountError, read_major

PAGE_SIZE = 50
# How many signal sentences a queue row shows before "and N more".
ROW_REASONS = 3
STATUS_CHOICES = ("live", *PAYOUT_STATUSES, "all")


# ---- Filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    program_id: int | None = None
    status: str = "live"  # "live", "all" or one of PAYOUT_STATUSES
    method: str | None = None
    min_amount: Decimal | None = None  # major units
    max_amount: Decimal | None = None
    flagged: bool = False
    errors: tuple[str, ...] = ()

    @property
    def statuses(self) -> tuple[str, ...]:
        if self.status == "live":
            return LIVE_PAYOUT
        if self.status == "all":
            return PAYOUT_STATUSES
        return (self.status,)

    def conditions(self) -> list:
        """The SQL conditions on Payout that these filters ask for."""
        conditions = [Payout.status.in_(self.statuses)]
        if self.program_id:
            conditions.append(Payout.program_id == self.program_id)
        if self.method:
            conditions.append(Payout.method == self.method)
        if self.min_amount is not None:
            conditions.append(_amount_bound(self.min_amount, lower=True))
        if self.max_amount is not None:
            conditions.append(_amount_bound(self.max_amount, lower=False))
        if self.flagged:
            conditions.append(_flagged_condition())
        return conditions

    def as_args(self) -> dict[str, str]:
        """The query string that reproduces these filters (defaults left out)."""
        args = {}
        if self.program_id:
            args["program"] = str(self.program_id)
        if self.status != "live":
            args["status"] = self.status
        if self.method:
            args["method"] = self.method
        if self.min_amount is not None:
            args["min"] = str(self.min_amount)
        if self.max_amount is not None:
            args["max"] = str(self.max_amount)
        if self.flagged:
            args["flagged"] = "1"
        return args

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "QueueFilters":
        """Parse a query string; a value that makes no sense is dropped with a message."""
        errors = []
        program_id = _int_or_none(args.get("program"))
        status = (args.get("status") or "live").strip()
        if status not in STATUS_CHOICES:
            errors.append(f"Unknown status “{status}”; showing the live payouts.")
            status = "live"
        method = (args.get("method") or "").strip() or None
        if method is not None and method not in PAYOUT_METHODS:
            errors.append(f"Unknown payout method “{method}”; showing every method.")
            method = None
        amounts = []
        for key, label in (("min", "minimum"), ("max", "maximum")):
            try:
                amounts.append(read_major(args.get(key)))
            except AmountError:
                errors.append(f"The {label} amount must be a number such as 25 or 25.50.")
                amounts.append(None)
        flagged = (args.get("flagged") or "") in ("1", "on", "true", "yes")
        return cls(program_id=program_id, status=status, method=method,
                   min_amount=amounts[0], max_amount=amounts[1], flagged=flagged,
                   errors=tuple(errors))


def _int_or_none(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


# The currencies whose minor unit has other than DEFAULT_EXPONENT decimals, by exponent.
_OTHER_EXPONENTS = {
    places: tuple(code for code, its in EXPONENTS.items() if its == places)
    for places in sorted(set(EXPONENTS.values()) - {DEFAULT_EXPONENT})
}
_OTHERS = tuple(code for codes in _OTHER_EXPONENTS.values() for code in codes)
# Payout.amount is a BigInteger: no payout is larger.
_LARGEST_AMOUNT = 2**63 - 1


def _amount_bound(major: Decimal, *, lower: bool):
    """Payout.amount compared with a bound in major units, exactly in every currency: one
    condition per exponent, each with the bound in that exponent's minor units. A minimum
    rounds up and a maximum down, so that "at least 10.005" never lets 10.00 through."""
    rounding = ROUND_CEILING if lower else ROUND_FLOOR

    def within(places: int):
        minor = int(major.scaleb(places).to_integral_value(rounding=rounding))
        if minor > _LARGEST_AMOUNT:
            return false() if lower else true()
        return Payout.amount >= minor if lower else Payout.amount <= minor

    return or_(and_(Payout.currency.not_in(_OTHERS), within(DEFAULT_EXPONENT)),
               *(and_(Payout.currency.in_(codes), within(places))
                 for places, codes in _OTHER_EXPONENTS.items()))


# ---- Which signals and held rewards stand behind a payout ---------------------------


def _signal_rewards():
    """The rewards a payout's flags come from, correlated to Payout: its own rewards,
    and while it is live, the customer's rewards on hold in the same program and currency
    (flagged money kept out of the payout)."""
    return or_(
        Reward.payout_id == Payout.id,
        and_(Payout.status.in_(LIVE_PAYOUT), Reward.status == "on_hold",
             Reward.customer_id == Payout.customer_id, Reward.currency == Payout.currency,
             Reward.program_id == Payout.program_id),
    )


def _flagged_condition():
    return exists(
        select(FraudSignal.id)
        .join(Conversion, Conversion.referral_id == FraudSignal.referral_id)
        .join(Reward, Reward.conversion_id == Conversion.id)
        .where(FraudSignal.status == "open", _signal_rewards())
    )


def _oldest_first(filters: QueueFilters) -> bool:
    """Work still to do is read oldest first; history newest first."""
    return set(filters.statuses) <= set(LIVE_PAYOUT)


# ---- The queue ---------------------------------------------------------------------


@dataclass
class QueueRow:
    payout: Payout
    customer: Customer
    approvals: int
    needed: int
    open_signals: int = 0
    reasons: list[str] = field(default_factory=list)  # sentences of the open signals
    held_count: int = 0
    held_amount: int = 0

    @property
    def flagged(self) -> bool:
        return self.open_signals > 0


@dataclass
class QueuePage:
    rows: list[QueueRow]
    page: int
    has_next: bool
    total: int


def queue(filters: QueueFilters, page: int = 1, per_page: int = PAGE_SIZE) -> QueuePage:
    page = max(page, 1)
    conditions = filters.conditions()
    total = db.session.scalar(select(func.count(Payout.id)).where(*conditions)) or 0
    order = (Payout.id.asc(),) if _oldest_first(filters) else (Payout.id.desc(),)
    found = db.session.execute(
        select(Payout, Customer).join(Customer, Customer.id == Payout.customer_id)
        .where(*conditions).order_by(*order)
        .offset((page - 1) * per_page).limit(per_page + 1)
    ).all()
    has_next = len(found) > per_page
    rows = [QueueRow(payout=p, customer=c, approvals=0, needed=2 if p.needs_two_approvals
                     else 1) for p, c in found[:per_page]]
    _annotate(rows)
    return QueuePage(rows=rows, page=page, has_next=has_next, total=total)


def _annotate(rows: list[QueueRow]) -> None:
    """Approvals, open signals and held rewards for a page of rows, in three queries."""
    if not rows:
        return
    by_id = {row.payout.id: row for row in rows}
    ids = list(by_id)
    for payout_id, count in db.session.execute(
            select(PayoutApproval.payout_id, func.count(PayoutApproval.id))
            .where(PayoutApproval.payout_id.in_(ids)).group_by(PayoutApproval.payout_id)):
        by_id[payout_id].approvals = count
    signals = db.session.execute(
        select(Payout.id, FraudSignal.id, FraudSignal.detail)
        .join(Reward, _signal_rewards())
        .join(Conversion, Conversion.id == Reward.conversion_id)
        .join(FraudSignal, FraudSignal.referral_id == Conversion.referral_id)
        .where(Payout.id.in_(ids), FraudSignal.status == "open")
        .distinct().order_by(Payout.id, FraudSignal.id)
    ).all()
    for payout_id, _signal_id, detail in signals:
        row = by_id[payout_id]
        row.open_signals += 1
        if detail not in row.reasons:
            row.reasons.append(detail)
    for payout_id, count, amount in db.session.execute(
            select(Payout.id, func.count(Reward.id),
                   func.coalesce(func.sum(Reward.amount - Reward.reversed_amount), 0))
            .join(Reward, and_(Reward.customer_id == Payout.customer_id,
                               Reward.currency == Payout.currency,
                               Reward.program_id == Payout.program_id,
                               Reward.status == "on_hold"))
            .where(Payout.id.in_(ids), Payout.status.in_(LIVE_PAYOUT))
            .group_by(Payout.id)):
        by_id[payout_id].held_count, by_id[payout_id].held_amount = count, int(amount)


def programs() -> list[Program]:
    return list(db.session.scalars(select(Program).order_by(Program.name, Program.id)))


def home_counts() -> dict[str, int]:
    """The coordinator's to-do list: what waits on them."""
    counts = dict(db.session.execute(
        select(Payout.status, func.count(Payout.id)).where(Payout.status.in_(LIVE_PAYOUT))
        .group_by(Payout.status)).all())
    flagged = db.session.scalar(select(func.count(Payout.id)).where(
        Payout.status.in_(LIVE_PAYOUT), _flagged_condition())) or 0
    to_pay = db.session.scalar(select(func.count(Payout.id)).where(
        Payout.status == "approved", Payout.method == "manual")) or 0
    held = db.session.scalar(select(func.count(Reward.id)).where(
        Reward.status == "on_hold")) or 0
    return {
        "awaiting_approval": counts.get("awaiting_approval", 0),
        "needs_attention": counts.get("needs_attention", 0),
        "failed": counts.get("failed", 0),
        "flagged": flagged,
        "to_pay": to_pay,
        "held": held,
    }
