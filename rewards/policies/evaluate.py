"""The pure reward evaluation: (policy, purchase, the referrer's history) -> ledger lines.

No database, no Flask, no clock: the same inputs always give the same `Evaluation`, so it
can be property-tested and replayed over history under a draft policy.

Rounding happens in exactly one place, `percent_of`: a percentage of a purchase is
computed with Decimal and rounded half up (ties away from zero) to the minor unit.
`pro_rata` (refund shares) rounds the same way, with exact integer arithmetic.

Order of the referrer's lines: the base or tier line first, then the milestone bonus;
each counts as one line for the limits. The friend's line comes last and has no limits.
"""

from __future__ import annotations

import calendar
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal

from rewards.money import format_money
from rewards.policies.policy import Limit, Policy, RewardRule


@dataclass(frozen=True, slots=True)
class Purchase:
    amount: int  # minor units, > 0
    currency: str
    occurred_at: datetime  # aware, UTC
    friend_id: int
    friend_signed_up_at: datetime  # when the friend was referred (aware, UTC)
    friend_prior_purchases: int  # the friend's earlier purchases in this program
    friend_rewarded_before: bool  # the friend already received a friend reward


@dataclass(frozen=True, slots=True)
class History:
    """The referrer's history before this purchase."""

    # Friend ids ordered by first rewarded purchase; friends whose rewards were all
    # reversed are already left out.
    rewarded_friends: tuple[int, ...] = ()
    month_count: int = 0  # referrer lines (bonuses included, reversals excluded), UTC month
    month_amount: int = 0  # their net amount
    lifetime_count: int = 0
    lifetime_amount: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    role: str  # "referrer" or "friend"
    rule: str  # "referrer", "tiers[0].referrer", "milestones[1]", "friend"
    amount: int  # > 0, minor units, the policy's currency
    explanation: str  # one sentence with the arithmetic


@dataclass(frozen=True, slots=True)
class Evaluation:
    decisions: tuple[Decision, ...]
    notes: tuple[str, ...]  # one sentence per reason something earned nothing or was limited
    available_at: datetime  # occurred_at + hold_days


# --------------------------------------------------------------------------- arithmetic

# Exact for any size of integer: scaleb and quantize never need more digits than exist.
_EXACT = Context(prec=MAX_PREC, rounding=ROUND_HALF_UP)
_UNIT = Decimal(1)


def percent_of(amount: int, bps: int) -> int:
    """`amount * bps / 10000` rounded half up to the minor unit (Decimal, ROUND_HALF_UP).

    This is the one place a reward is rounded: 5 bps of 100 = 0.05 -> 0; of 1000 = 0.5 -> 1.
    """
    return int(Decimal(amount * bps).scaleb(-4, _EXACT).quantize(_UNIT, ROUND_HALF_UP, _EXACT))


def pro_rata(amount: int, part: int, whole: int) -> int:
    """`amount * part / whole` rounded half up (ties away from zero), exactly, with integers.

    For refunds: the share of a reward to reverse when `part` of a `whole` purchase was
    refunded (use the cumulative refunded amount so the rounding never drifts).
    """
    if whole <= 0:
        raise ValueError("pro_rata: whole must be positive")
    product = amount * part
    quotient, remainder = divmod(abs(product), whole)
    if 2 * remainder >= whole:
        quotient += 1
    return -quotient if product < 0 else quotient


def percent_text(bps: int) -> str:
    """Basis points for people: 1000 -> "10%", 1250 -> "12.5%", 5 -> "0.05%"."""
    whole, fraction = divmod(bps, 100)
    if not fraction:
        return f"{whole}%"
    return f"{whole}.{fraction:02d}".rstrip("0") + "%"


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def month_start(moment: datetime) -> datetime:
    """The start of the UTC calendar month that monthly limits count in."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months, the day clamped to the month end (Jan 31 + 1: Feb 28/29)."""
    total = moment.month - 1 + months
    year = moment.year + total // 12
    month = total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --------------------------------------------------------------------------- compiled policy


class _Rule:
    """A reward rule with its texts prepared once."""

    __slots__ = ("name", "fixed", "bps", "cap", "percent", "cap_text", "prefix", "fixed_text")

    def __init__(self, name: str, rule: RewardRule, currency: str, prefix: str) -> None:
        self.name = name
        self.fixed = rule.fixed
        self.bps = rule.percent_bps
        self.cap = rule.cap
        self.prefix = prefix
        self.percent = percent_text(rule.percent_bps) if rule.percent_bps is not None else ""
        self.cap_text = format_money(rule.cap, currency) if rule.cap is not None else ""
        if rule.fixed is not None:
            body = f"fixed {format_money(rule.fixed, currency)} for the referral."
            self.fixed_text = f"{prefix}a {body}" if prefix else f"A {body}"
        else:
            self.fixed_text = ""


class _Compiled:
    """Everything `evaluate` needs from a policy, computed once per Policy object."""

    __slots__ = (
        "policy", "currency", "hold", "min_purchase", "min_text", "first", "within",
        "base", "tier_froms", "tier_rules", "milestones", "friend", "limited",
        "month_count", "month_amount", "life_count", "life_amount",
        "month_count_text", "month_amount_text", "life_count_text", "life_amount_text",
    )

    def __init__(self, policy: Policy) -> None:
        currency = policy.currency
        self.policy = policy
        self.currency = currency
        self.hold = timedelta(days=policy.hold_days)
        self.min_purchase = policy.min_purchase
        self.min_text = format_money(policy.min_purchase, currency)
        self.first = policy.purchases == "first"
        self.within = policy.purchases if isinstance(policy.purchases, int) else None
        self.base = (_Rule("referrer", policy.referrer, currency, "")
                     if policy.referrer is not None else None)
        tiers = sorted(enumerate(policy.tiers), key=lambda item: item[1].start)
        self.tier_froms = tuple(tier.start for _, tier in tiers)
        self.tier_rules = tuple(
            _Rule(f"tiers[{i}].referrer", tier.referrer, currency,
                  f"Tier from the {ordinal(tier.start)} friend: ")
            for i, tier in tiers
        )
        self.milestones = {
            m.at: (f"milestones[{i}]", m.bonus,
                   f"Milestone bonus for the {ordinal(m.at)} rewarded friend: "
                   f"{format_money(m.bonus, currency)}.")
            for i, m in enumerate(policy.milestones)
        }
        self.friend = (_Rule("friend", policy.friend, currency, "")
                       if policy.friend is not None else None)
        month = policy.month_limit or Limit()
        life = policy.lifetime_limit or Limit()
        self.month_count, self.month_amount = month.count, month.amount
        self.life_count, self.life_amount = life.count, life.amount
        self.limited = any(v is not None for v in (month.count, month.amount,
                                                   life.count, life.amount))
        self.month_count_text = _count_text("monthly", month.count)
        self.life_count_text = _count_text("lifetime", life.count)
        self.month_amount_text = _amount_text("monthly", month.amount, currency)
        self.life_amount_text = _amount_text("lifetime", life.amount, currency)


def _count_text(period: str, count: int | None) -> str:
    if count is None:
        return ""
    return f"{period} limit of {count} reward{'' if count == 1 else 's'}"


def _amount_text(period: str, amount: int | None, currency: str) -> str:
    return "" if amount is None else f"{period} limit of {format_money(amount, currency)}"


_CACHE: dict[int, _Compiled] = {}
_CACHE_SIZE = 1024


def _compiled(policy: Policy) -> _Compiled:
    compiled = _CACHE.get(id(policy))
    if compiled is not None and compiled.policy is policy:
        return compiled
    compiled = _Compiled(policy)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[id(policy)] = compiled  # holds the policy, so its id cannot be reused meanwhile
    return compiled


# --------------------------------------------------------------------------- evaluation


def _reward(rule: _Rule, amount: int, currency: str, whom: str) -> tuple[int, str]:
    """(amount, explanation) for a rule; amount 0 means the text is a note instead."""
    if rule.fixed is not None:
        return rule.fixed, rule.fixed_text
    raw = percent_of(amount, rule.bps)
    head = (f"{rule.prefix}{rule.percent} of {format_money(amount, currency)}"
            f" = {format_money(raw, currency)}")
    if raw <= 0:
        return 0, f"{head}, so the {whom} earns nothing."
    cap = rule.cap
    if cap is not None and raw > cap:
        return cap, f"{head}, capped at {rule.cap_text}."
    return raw, f"{head}."


def _limit(c: _Compiled, value: int, month_count: int, month_amount: int,
           life_count: int, life_amount: int) -> tuple[int, str]:
    """(what may be paid, the limit that acted or ""). 0 means skip the line.

    A reached count limit skips; amount limits pay what remains, the tighter one wins
    (the lifetime limit is named when both leave the same)."""
    if c.life_count is not None and life_count >= c.life_count:
        return 0, c.life_count_text
    if c.month_count is not None and month_count >= c.month_count:
        return 0, c.month_count_text
    paid, acted = value, ""
    if c.month_amount is not None:
        remaining = c.month_amount - month_amount
        if remaining < paid:
            paid, acted = remaining, c.month_amount_text
    if c.life_amount is not None:
        remaining = c.life_amount - life_amount
        if remaining < value and remaining <= paid:
            paid, acted = remaining, c.life_amount_text
    return (paid if paid > 0 else 0), acted


def _within_limits(c: _Compiled, value: int, text: str, counters: tuple[int, int, int, int],
                   currency: str, what: str, notes: list[str]) -> tuple[int, str]:
    """One referrer line under the monthly and lifetime limits: (amount paid, explanation).

    `counters` is (month count, month amount, lifetime count, lifetime amount) so far.
    """
    paid, acted = value, ""
    if c.limited:
        paid, acted = _limit(c, value, *counters)
    if not paid:
        notes.append(f"The {acted} is reached; no {what}.")
        return 0, text
    if paid < value:
        shown = format_money(paid, currency)
        text = f"{text} Limited to {shown} by the {acted}."
        notes.append(f"The {acted} limited the {what} to {shown}.")
    return paid, text


def evaluate(policy: Policy, purchase: Purchase, history: History) -> Evaluation:
    """The lines `policy` gives for `purchase`, given the referrer's `history` before it."""
    c = _compiled(policy)
    occurred = purchase.occurred_at
    available_at = occurred + c.hold
    currency = c.currency
    if purchase.currency != currency and purchase.currency.lower() != currency:
        note = (f"Purchases in {purchase.currency.lower()} earn nothing: "
                f"the policy pays in {currency}.")
        return Evaluation((), (note,), available_at)
    amount = purchase.amount
    if amount <= 0:
        return Evaluation((), ("Only a purchase of a positive amount earns a reward.",),
                          available_at)
    if amount < c.min_purchase:
        note = (f"The purchase of {format_money(amount, currency)} is under the "
                f"{c.min_text} minimum.")
        return Evaluation((), (note,), available_at)
    if c.first:
        if purchase.friend_prior_purchases:
            return Evaluation((), ("Only the friend's first purchase earns a reward.",),
                              available_at)
    elif c.within is not None:
        signed_up = purchase.friend_signed_up_at
        if signed_up.utcoffset():
            signed_up = signed_up.astimezone(UTC)
        deadline = add_months(signed_up, c.within)
        if occurred > deadline:
            months = f"{c.within} month{'' if c.within == 1 else 's'}"
            note = (f"Only purchases within {months} of the friend's signup earn a reward; "
                    f"this one came after {deadline:%Y-%m-%d %H:%M} UTC.")
            return Evaluation((), (note,), available_at)

    decisions: list[Decision] = []
    notes: list[str] = []

    # The friend's place among the referrer's rewarded friends.
    rewarded = history.rewarded_friends
    friend_id = purchase.friend_id
    if friend_id in rewarded:
        place, new = rewarded.index(friend_id) + 1, False
    else:
        place, new = len(rewarded) + 1, True

    rule = c.base
    froms = c.tier_froms
    if froms:
        index = bisect_right(froms, place)
        if index:
            rule = c.tier_rules[index - 1]
        elif rule is None:
            notes.append(f"The referrer's reward starts with the {ordinal(froms[0])} "
                         f"rewarded friend; this is the {ordinal(place)}.")

    referrer_paid = False
    if rule is not None:
        value, text = _reward(rule, amount, currency, "referrer")
        if value:
            counters = (history.month_count, history.month_amount,
                        history.lifetime_count, history.lifetime_amount)
            paid, text = _within_limits(c, value, text, counters, currency, "reward", notes)
            if paid:
                decisions.append(Decision("referrer", rule.name, paid, text))
                referrer_paid = True
                month_count, month_amount, life_count, life_amount = counters
                counters = (month_count + 1, month_amount + paid,
                            life_count + 1, life_amount + paid)
        else:
            notes.append(text)

    if new and c.milestones:
        milestone = c.milestones.get(place)
        if milestone is not None:
            name, bonus, text = milestone
            if not referrer_paid:
                notes.append(f"No milestone bonus for the {ordinal(place)} rewarded friend "
                             "without a referrer reward for this purchase.")
            else:
                paid, text = _within_limits(c, bonus, text, counters, currency,
                                            "milestone bonus", notes)
                if paid:
                    decisions.append(Decision("referrer", name, paid, text))

    friend_rule = c.friend
    if friend_rule is not None:
        if purchase.friend_rewarded_before:
            notes.append("The friend already received their reward.")
        else:
            value, text = _reward(friend_rule, amount, currency, "friend")
            if value:
                decisions.append(Decision("friend", "friend", value, text))
            else:
                notes.append(text)

    return Evaluation(tuple(decisions), tuple(notes), available_at)


def cautions(policy: Policy) -> list[str]:
    """Parts of a valid policy that can never pay, each "<location>: <why>".

    Tiers (which start from the 2nd friend at the earliest) and milestones count the
    referrer's rewarded friends: friends the referrer has been rewarded for. Without a
    base `referrer` rule the referrer is never rewarded, so no friend counts and no tier
    or milestone is reached. The document stays valid (documents that were valid stay
    valid); the editor and `publish-policy` say so instead.
    """
    if policy.referrer is not None:
        return []
    found = []
    if policy.tiers:
        first = min(tier.start for tier in policy.tiers)
        found.append(
            f"tiers: never reached: a friend counts once the referrer has been rewarded for "
            f"them, and with no base `referrer` rule nothing is paid before the "
            f"{ordinal(first)} friend. Add a base `referrer` rule.")
    if policy.milestones:
        found.append(
            "milestones: never reached: a milestone bonus comes with a referrer reward, and "
            "with no base `referrer` rule the referrer is never rewarded. Add a base "
            "`referrer` rule.")
    return found
