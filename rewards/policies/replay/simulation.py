"""Replaying a draft policy over recent purchases and comparing it with what was paid.

`simulate(program, document, days)` validates the draft, loads the program's attributed
purchases of the last `days` days and everything their evaluation needs in a handful of
queries, then replays them in time order through the pure `evaluate`, keeping each
referrer's `History` in memory as the ledger would have kept it. It writes nothing.

How the replay stands in for the real ledger:

- Each referrer starts the window with the history its actual reward lines give before
  the window (rewarded friends in order, lifetime and this month's counts and amounts,
  live lines only, net of reversals), as `rewards.referrer_history` would read it.
- A friend's earlier purchases are counted from all of the friend's purchases in the
  program, attributed or not; the friend is "rewarded before" when a live friend line
  exists before the purchase (an actual one before the window, or a draft one in it).
- Draft lines grow the history as they are decided: one more line and its amount for the
  month (UTC calendar month of the purchase) and for life, and a newly rewarded friend at
  the end of the order.
- Refunds reverse draft lines pro rata on the cumulative refunded amount. In the history
  they act from when the refund was recorded: a purchase sees the refunds recorded
  before it was processed (its `processed_at`, or its `created_at` before that), as the
  reward job would have. A line reversed in full leaves the history, and a friend left
  without a live referrer line leaves the order, as in the ledger. (After payment the
  ledger claws back instead and keeps the line; a draft has no payments, so it reverses.)
- Costs are net: a line's amount less what refunds take back (reversals and clawbacks
  for the actual lines; the pro rata share for the draft ones). Rewards are counted
  line by line, rejected actual lines left out. Currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, null, select

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import (
    LIVE_REWARDS,
    Adjustment,
    Conversion,
    Customer,
    Program,
    Referral,
    Refund,
    Reward,
    utcnow,
)
from rewards.policies.evaluate import History, Purchase, evaluate
from rewards.policies.months import month_start
from rewards.policies.policy import Policy
from rewards.policies.rounding import pro_rata
from rewards.policies.versions import check_document, current_version
from rewards.privacy import mask_email

MAX_DAYS = 365
TOP_REFERRERS = 10
PROGRESS_EVERY = 1000

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- results


@dataclass
class CurrencyComparison:
    """The draft against what was actually paid, in one currency (minor units)."""

    currency: str
    purchases: int = 0  # attributed purchases in this currency that were replayed
    draft_cost: int = 0
    actual_cost: int = 0
    draft_rewards: int = 0  # reward lines
    actual_rewards: int = 0
    draft_customers: int = 0  # friends whose purchase earned at least one line
    actual_customers: int = 0
    draft_per_customer: int | None = None  # cost / customers, half up; None without any
    actual_per_customer: int | None = None

    @property
    def cost_delta(self) -> int:
        return self.draft_cost - self.actual_cost

    @property
    def rewards_delta(self) -> int:
        return self.draft_rewards - self.actual_rewards

    @property
    def customers_delta(self) -> int:
        return self.draft_customers - self.actual_customers

    @property
    def per_customer_delta(self) -> int | None:
        if self.draft_per_customer is None or self.actual_per_customer is None:
            return None
        return self.draft_per_customer - self.actual_per_customer


@dataclass
class ReferrerChange:
    """One referrer's own rewards (referrer lines, bonuses included) in one currency."""

    referrer_id: int
    external_id: str | None
    name: str | None
    email: str  # masked
    currency: str
    actual: int
    draft: int

    @property
    def delta(self) -> int:
        return self.draft - self.actual


@dataclass
class SimulationResult:
    program_id: int
    days: int
    since: datetime
    until: datetime
    purchases: int  # attributed purchases replayed
    published_version: int | None  # the version in force now, or None
    currencies: list[CurrencyComparison] = field(default_factory=list)
    referrers: list[ReferrerChange] = field(default_factory=list)  # |delta| desc, top 10


def per_customer(cost: int, customers: int) -> int | None:
    """Cost per acquired customer in minor units, rounded half up; None without customers."""
    if not customers:
        return None
    return int((Decimal(cost) / Decimal(customers)).quantize(Decimal(1), ROUND_HALF_UP))


# --------------------------------------------------------------------------- replay state


class _Referrer:
    """One referrer's history in one currency, as the ledger would hold it mid-replay."""

    __slots__ = ("friends", "friend_lines", "month", "month_count", "month_amount",
                 "life_count", "life_amount", "_history")

    def __init__(self, month: tuple[int, int]) -> None:
        self.friends: list[int] = []  # ordered by first live (non-bonus) referrer line
        self.friend_lines: dict[int, int] = {}  # friend -> live non-bonus referrer lines
        self.month = month
        self.month_count = self.month_amount = 0
        self.life_count = self.life_amount = 0
        self._history: History | None = None

    def history(self, month: tuple[int, int]) -> History:
        if month != self.month:  # purchases come in time order: a later month starts empty
            self.month, self.month_count, self.month_amount = month, 0, 0
            self._history = None
        if self._history is None:
            self._history = History(tuple(self.friends), self.month_count, self.month_amount,
                                    self.life_count, self.life_amount)
        return self._history

    def add_line(self, friend_id: int, amount: int, bonus: bool) -> None:
        self.month_count += 1
        self.month_amount += amount
        self.life_count += 1
        self.life_amount += amount
        if not bonus:
            count = self.friend_lines.get(friend_id, 0)
            if not count:
                self.friends.append(friend_id)
            self.friend_lines[friend_id] = count + 1
        self._history = None

    def reverse(self, friend_id: int, month: tuple[int, int], share: int, whole: bool,
                bonus: bool) -> None:
        this_month = month == self.month
        self.life_amount -= share
        if this_month:
            self.month_amount -= share
        if whole:
            self.life_count -= 1
            if this_month:
                self.month_count -= 1
            if not bonus:
                left = self.friend_lines[friend_id] - 1
                self.friend_lines[friend_id] = left
                if not left:
                    self.friends.remove(friend_id)
        self._history = None


class _Line:
    """A draft line of a refunded purchase, kept to apply its refunds to the history."""

    __slots__ = ("state", "friend", "month", "amount", "bonus", "reversed")

    def __init__(self, state: _Referrer | None, friend: int, month: tuple[int, int],
                 amount: int, bonus: bool) -> None:
        self.state = state  # the referrer's history; None for the friend's own line
        self.friend = friend
        self.month = month
        self.amount = amount
        self.bonus = bonus
        self.reversed = 0


# --------------------------------------------------------------------------- the replay


def simulate(program: Program, document: object, days: int,
             progress: Progress | None = None) -> SimulationResult:
    """Replay `document` over the program's attributed purchases of the last `days` days.

    Raises InvalidPolicy (with `.errors`) for an invalid draft and ServiceError for a
    period outside 1..365 days. Reads only, in a few queries whatever the number of
    purchases; the session is rolled back at the end, so call it with nothing pending.
    `progress(done, total)` is called at the start, every 1,000 purchases and at the end.
    """
    policy = check_document(program, document)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ServiceError(f"The period must be 1 to {MAX_DAYS} days.", field="days")
    try:
        return _simulate(program, policy, days, progress)
    finally:
        db.session.rollback()


def _simulate(program: Program, policy: Policy, days: int,
              progress: Progress | None) -> SimulationResult:
    until = utcnow()
    since = until - timedelta(days=days)
    first_month = month_start(since)
    version = current_version(program.id)

    in_window = (Conversion.program_id == program.id, Conversion.occurred_at >= since)
    attributed = select(Conversion.id).where(*in_window, Conversion.referral_id.is_not(None))
    friends = (select(Conversion.customer_id)
               .where(*in_window, Conversion.referral_id.is_not(None)).distinct())
    referrers = (select(Referral.referrer_id)
                 .join(Conversion, Conversion.referral_id == Referral.id)
                 .where(*in_window).distinct())

    # Refunds of the window's purchases, in the order they were recorded.
    refunds = db.session.execute(
        select(Refund.conversion_id, Refund.cumulative, Refund.created_at)
        .where(Refund.conversion_id.in_(attributed))
        .order_by(Refund.created_at, Refund.id)
    ).all()

    # The purchases: every one of the window's friends' purchases (the unattributed ones
    # count as earlier purchases only), in time order, with the referral they came by.
    # When each was processed matters only to place refunds.
    processed = (func.coalesce(Conversion.processed_at, Conversion.created_at) if refunds
                 else null())
    rows = db.session.execute(
        select(Conversion.id, Conversion.customer_id, Conversion.amount, Conversion.currency,
               Conversion.occurred_at, Conversion.refunded_amount, Referral.referrer_id,
               Referral.created_at, processed)
        .outerjoin(Referral, Referral.id == Conversion.referral_id)
        .where(*in_window, Conversion.customer_id.in_(friends))
        .order_by(Conversion.occurred_at, Conversion.id)
    ).all()

    # The friends' purchases before the window.
    prior: dict[int, int] = dict(db.session.execute(
        select(Conversion.customer_id, func.count(Conversion.id))
        .where(Conversion.program_id == program.id, Conversion.occurred_at < since,
               Conversion.customer_id.in_(friends))
        .group_by(Conversion.customer_id)
    ).all())

    # Friends who already hold a live friend reward from before the window.
    rewarded_before = set(db.session.scalars(
        select(Reward.customer_id).distinct()
        .where(Reward.role == "friend", Reward.status.in_(LIVE_REWARDS), Reward.occurred_at < since,
               Reward.customer_id.in_(friends))
    ))

    states = _starting_histories(referrers, since, first_month)

    # --- replay
    first_key = (first_month.year, first_month.month)
    by_currency: dict[str, CurrencyComparison] = {}
    draft_customers: dict[str, set[int]] = {}
    draft_by_referrer: dict[tuple[int, str], int] = {}
    friend_lines: dict[int, int] = {}  # friend -> live draft friend lines
    refunded_lines: dict[int, tuple[int, list[_Line]]] = {}  # conversion -> (amount, lines)
    pending_refunds: dict[int, int] = {}  # conversion not replayed yet -> cumulative
    next_refund = 0
    replayed = 0
    total = len(rows)
    if progress:
        progress(0, total)

    def apply_refund(conversion_id: int, cumulative: int) -> None:
        amount, lines = refunded_lines[conversion_id]
        for line in lines:
            target = pro_rata(line.amount, cumulative, amount)
            share = target - line.reversed
            if share <= 0:
                continue
            line.reversed = target
            whole = target >= line.amount
            if line.state is not None:
                line.state.reverse(line.friend, line.month, share, whole, line.bonus)
            elif whole:
                friend_lines[line.friend] -= 1

    for done, row in enumerate(rows, start=1):
        (conversion_id, friend, amount, currency, occurred, refunded, referrer,
         signed_up, processed_at) = row
        earlier = prior.get(friend, 0)
        prior[friend] = earlier + 1
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
        if referrer is None:
            continue
        replayed += 1

        # Refunds recorded before this purchase was processed are in its history.
        while next_refund < len(refunds) and refunds[next_refund][2] <= processed_at:
            refund_of, cumulative, _ = refunds[next_refund]
            next_refund += 1
            if refund_of in refunded_lines:
                apply_refund(refund_of, cumulative)
            else:
                pending_refunds[refund_of] = cumulative

        key = (referrer, currency)
        state = states.get(key)
        if state is None:
            state = states[key] = _Referrer(first_key)
        month = (occurred.year, occurred.month)
        evaluation = evaluate(policy, Purchase(
            amount=amount, currency=currency, occurred_at=occurred, friend_id=friend,
            friend_signed_up_at=signed_up, friend_prior_purchases=earlier,
            friend_rewarded_before=friend in rewarded_before or friend_lines.get(friend, 0) > 0,
        ), state.history(month))

        totals = by_currency.get(currency)
        if totals is None:
            totals = by_currency[currency] = CurrencyComparison(currency)
            draft_customers[currency] = set()
        totals.purchases += 1
        decisions = evaluation.decisions
        if not decisions:
            continue
        draft_customers[currency].add(friend)
        lines = None
        if refunded:
            lines = []
            refunded_lines[conversion_id] = (amount, lines)
        for decision in decisions:
            value = decision.amount
            net = value - pro_rata(value, refunded, amount) if refunded else value
            totals.draft_cost += net
            totals.draft_rewards += 1
            if decision.role == "referrer":
                bonus = decision.rule.startswith("milestones")
                state.add_line(friend, value, bonus)
                draft_by_referrer[key] = draft_by_referrer.get(key, 0) + net
                if lines is not None:
                    lines.append(_Line(state, friend, month, value, bonus))
            else:
                friend_lines[friend] = friend_lines.get(friend, 0) + 1
                if lines is not None:
                    lines.append(_Line(None, friend, month, value, False))
        if conversion_id in pending_refunds:
            apply_refund(conversion_id, pending_refunds.pop(conversion_id))
    if progress and total % PROGRESS_EVERY:
        progress(total, total)

    # --- what was actually paid for the same purchases
    actual_by_referrer = _actual(attributed, by_currency, draft_customers)

    currencies = sorted(by_currency.values(),
                        key=lambda c: (c.currency != program.currency, c.currency))
    for totals in currencies:
        totals.draft_customers = len(draft_customers.get(totals.currency, ()))
        totals.draft_per_customer = per_customer(totals.draft_cost, totals.draft_customers)
        totals.actual_per_customer = per_customer(totals.actual_cost, totals.actual_customers)

    return SimulationResult(
        program_id=program.id, days=days, since=since, until=until, purchases=replayed,
        published_version=version.version if version else None, currencies=currencies,
        referrers=_top_referrers(draft_by_referrer, actual_by_referrer),
    )


def _starting_histories(referrers, since: datetime,
                        first_month: datetime) -> dict[tuple[int, str], _Referrer]:
    """Each referrer's history at the window start, from its live lines before it."""
    key = (first_month.year, first_month.month)
    states: dict[tuple[int, str], _Referrer] = {}
    before = (Reward.role == "referrer", Reward.status.in_(LIVE_REWARDS),
              Reward.occurred_at < since, Reward.customer_id.in_(referrers))
    net = Reward.amount - Reward.reversed_amount
    this_month = Reward.occurred_at >= first_month
    totals = db.session.execute(
        select(Reward.customer_id, Reward.currency, func.count(Reward.id),
               func.coalesce(func.sum(net), 0),
               func.coalesce(func.sum(case((this_month, 1), else_=0)), 0),
               func.coalesce(func.sum(case((this_month, net), else_=0)), 0))
        .where(*before)
        .group_by(Reward.customer_id, Reward.currency)
    ).all()
    for referrer, currency, count, amount, month_count, month_amount in totals:
        state = states[(referrer, currency)] = _Referrer(key)
        state.life_count, state.life_amount = count, int(amount)
        state.month_count, state.month_amount = int(month_count), int(month_amount)
    first = func.min(Reward.occurred_at)
    first_id = func.min(Reward.id)
    ordered = db.session.execute(
        select(Reward.customer_id, Reward.currency, Reward.friend_id, func.count(Reward.id))
        .where(*before, Reward.rule.not_like("milestones%"))
        .group_by(Reward.customer_id, Reward.currency, Reward.friend_id)
        .order_by(Reward.customer_id, Reward.currency, first, first_id)
    ).all()
    for referrer, currency, friend, count in ordered:
        state = states.get((referrer, currency))
        if state is None:  # cannot happen: the totals count the same lines
            state = states[(referrer, currency)] = _Referrer(key)
        state.friends.append(friend)
        state.friend_lines[friend] = count
    return states


def _actual(attributed, by_currency: dict[str, CurrencyComparison],
            draft_customers: dict[str, set[int]]) -> dict[tuple[int, str], int]:
    """Fill in the actual figures; returns each referrer's own net lines by currency."""
    clawed = (select(Adjustment.reward_id, func.sum(Adjustment.amount).label("amount"))
              .where(Adjustment.kind == "clawback",
                     Adjustment.reward_id.in_(
                         select(Reward.id).where(Reward.conversion_id.in_(attributed))))
              .group_by(Adjustment.reward_id)
              .subquery())
    lines = db.session.execute(
        select(Reward.customer_id, Reward.friend_id, Reward.role, Reward.currency,
               Reward.amount - Reward.reversed_amount + func.coalesce(clawed.c.amount, 0))
        .outerjoin(clawed, clawed.c.reward_id == Reward.id)
        .where(Reward.conversion_id.in_(attributed), Reward.status != "rejected")
    ).all()
    customers: dict[str, set[int]] = {}
    by_referrer: dict[tuple[int, str], int] = {}
    for beneficiary, friend, role, currency, net in lines:
        net = int(net)
        totals = by_currency.get(currency)
        if totals is None:
            totals = by_currency[currency] = CurrencyComparison(currency)
            draft_customers[currency] = set()
        totals.actual_cost += net
        totals.actual_rewards += 1
        customers.setdefault(currency, set()).add(friend)
        if role == "referrer":
            key = (beneficiary, currency)
            by_referrer[key] = by_referrer.get(key, 0) + net
    for currency, friends in customers.items():
        by_currency[currency].actual_customers = len(friends)
    return by_referrer


def _top_referrers(draft: dict[tuple[int, str], int],
                   actual: dict[tuple[int, str], int]) -> list[ReferrerChange]:
    changes = []
    for key in draft.keys() | actual.keys():
        before, after = actual.get(key, 0), draft.get(key, 0)
        if after != before:
            changes.append((key, before, after))
    changes.sort(key=lambda item: (-abs(item[2] - item[1]), item[0]))
    changes = changes[:TOP_REFERRERS]
    people = {customer.id: customer for customer in db.session.scalars(
        select(Customer).where(Customer.id.in_({key[0] for key, _, _ in changes})))
    } if changes else {}
    result = []
    for (referrer_id, currency), before, after in changes:
        person = people.get(referrer_id)
        result.append(ReferrerChange(
            referrer_id=referrer_id,
            external_id=person.external_id if person else None,
            name=person.name if person else None,
            email=mask_email(person.email if person else None),
            currency=currency, actual=before, draft=after,
        ))
    return result
