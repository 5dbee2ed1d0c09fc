"""Read model for the coordinator's payout queue: filters, rows with their flags, the
evidence behind one payout, and the rows of the payouts CSV.

Nothing here changes state; the actions are in `services.payouts` and `services.fraud`.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from sqlalchemy import and_, exists, false, func, or_, select, true
from sqlalchemy.orm import aliased

from rewards.extensions import db
from rewards.models import (
    LIVE_PAYOUT,
    PAYOUT_METHODS,
    PAYOUT_STATUSES,
    Adjustment,
    Click,
    Conversion,
    Customer,
    FraudSignal,
    Payout,
    PayoutApproval,
    Program,
    Referral,
    Reward,
    Signup,
)
from rewards.money import DEFAULT_EXPONENT, EXPONENTS, AmountError, major_units, read_major

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


def _filtered(filters: QueueFilters):
    conditions = [Payout.status.in_(filters.statuses)]
    if filters.program_id:
        conditions.append(Payout.program_id == filters.program_id)
    if filters.method:
        conditions.append(Payout.method == filters.method)
    if filters.min_amount is not None:
        conditions.append(_amount_bound(filters.min_amount, lower=True))
    if filters.max_amount is not None:
        conditions.append(_amount_bound(filters.max_amount, lower=False))
    if filters.flagged:
        conditions.append(_flagged_condition())
    return conditions


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
    conditions = _filtered(filters)
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


# ---- One payout --------------------------------------------------------------------


@dataclass
class Evidence:
    """The chain behind one referral: the click, the signup, the purchases, the signals."""

    referral: Referral
    friend_email: str | None  # the raw email; templates show it masked
    click: Click | None
    signup: Signup | None
    purchases: list[Conversion]
    signals: list[FraudSignal]

    @property
    def open_signals(self) -> list[FraudSignal]:
        return [s for s in self.signals if s.status == "open"]


@dataclass
class RewardLine:
    reward: Reward
    referral_id: int | None


@dataclass
class PayoutDetail:
    payout: Payout
    customer: Customer
    program: Program
    approvals: list[PayoutApproval]
    needed: int
    rewards: list[RewardLine]
    netted: list[Adjustment]
    held: list[RewardLine]  # the customer's rewards on hold, outside this payout
    evidence: dict[int, Evidence]  # by referral id

    @property
    def open_signals(self) -> int:
        return sum(len(e.open_signals) for e in self.evidence.values())

    def approved_by(self, account_id: int) -> bool:
        return any(a.account_id == account_id for a in self.approvals)


def detail(payout_id: int) -> PayoutDetail | None:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return None
    rewards = db.session.scalars(
        select(Reward).where(Reward.payout_id == payout.id).order_by(Reward.id)).all()
    held = []
    if payout.status in LIVE_PAYOUT:
        held = db.session.scalars(
            select(Reward).where(Reward.customer_id == payout.customer_id,
                                 Reward.currency == payout.currency,
                                 Reward.program_id == payout.program_id,
                                 Reward.status == "on_hold").order_by(Reward.id)).all()
    netted = db.session.scalars(
        select(Adjustment).where(Adjustment.payout_id == payout.id).order_by(Adjustment.id)
    ).all()
    approvals = db.session.scalars(
        select(PayoutApproval).where(PayoutApproval.payout_id == payout.id)
        .order_by(PayoutApproval.id)).all()
    referral_of = _referrals_of([*rewards, *held])
    return PayoutDetail(
        payout=payout, customer=payout.customer, program=payout.program,
        approvals=list(approvals), needed=2 if payout.needs_two_approvals else 1,
        rewards=[RewardLine(r, referral_of.get(r.id)) for r in rewards],
        netted=list(netted),
        held=[RewardLine(r, referral_of.get(r.id)) for r in held],
        evidence=evidence(set(referral_of.values()), [*rewards, *held]),
    )


def _referrals_of(rewards: list[Reward]) -> dict[int, int]:
    """reward id -> the referral behind it (through its purchase)."""
    if not rewards:
        return {}
    rows = db.session.execute(
        select(Reward.id, Conversion.referral_id)
        .join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Reward.id.in_([r.id for r in rewards]), Conversion.referral_id.is_not(None))
    ).all()
    return dict(rows)


def evidence(referral_ids: set[int], rewards: list[Reward]) -> dict[int, Evidence]:
    """The evidence chain of each referral; the purchases listed are those behind
    `rewards` (not every purchase the friend ever made)."""
    if not referral_ids:
        return {}
    ids = sorted(referral_ids)
    friend = aliased(Customer)
    referrals = db.session.execute(
        select(Referral, friend.email).join(friend, friend.id == Referral.friend_id)
        .where(Referral.id.in_(ids)).order_by(Referral.id)).all()
    click_ids = [r.click_id for r, _ in referrals if r.click_id]
    clicks = {c.id: c for c in db.session.scalars(select(Click).where(Click.id.in_(click_ids)))} \
        if click_ids else {}
    signups = {s.customer_id: s for s in db.session.scalars(
        select(Signup).where(Signup.customer_id.in_([r.friend_id for r, _ in referrals])))}
    conversion_ids = {r.conversion_id for r in rewards}
    purchases = defaultdict(list)
    for conversion in db.session.scalars(
            select(Conversion).where(Conversion.id.in_(conversion_ids),
                                     Conversion.referral_id.in_(ids))
            .order_by(Conversion.occurred_at, Conversion.id)):
        purchases[conversion.referral_id].append(conversion)
    signals = defaultdict(list)
    for signal in db.session.scalars(
            select(FraudSignal).where(FraudSignal.referral_id.in_(ids))
            .order_by(FraudSignal.id)):
        signals[signal.referral_id].append(signal)
    return {
        referral.id: Evidence(referral=referral, friend_email=email,
                              click=clicks.get(referral.click_id),
                              signup=signups.get(referral.friend_id),
                              purchases=purchases[referral.id],
                              signals=signals[referral.id])
        for referral, email in referrals
    }


# ---- CSV ---------------------------------------------------------------------------

EXPORT_HEADER = ("id", "customer_external_id", "email", "amount", "currency", "method",
                 "status", "reference", "created", "approved", "paid")


def export_rows(filters: QueueFilters, batch: int = 500) -> Iterator[tuple]:
    """The payouts matching `filters`, oldest first, streamed from the database; the
    customer's email is masked (the file leaves the platform)."""
    from rewards.privacy import mask_email

    stmt = (select(Payout, Customer.external_id, Customer.email)
            .join(Customer, Customer.id == Payout.customer_id)
            .where(*_filtered(filters)).order_by(Payout.id)
            .execution_options(yield_per=batch))
    for payout, external_id, email in db.session.execute(stmt):
        yield (payout.id, external_id or "", mask_email(email), major_units(
            payout.amount, payout.currency), payout.currency.upper(), payout.method,
            payout.status, payout.reference or "", _iso(payout.created_at),
            _iso(payout.approved_at), _iso(payout.paid_at))


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


