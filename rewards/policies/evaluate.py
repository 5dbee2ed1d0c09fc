"""The pure reward evaluation: (policy, purchase, the referrer's history) -> ledger lines.

No database, no Flask, no clock: the same inputs always give the same `Evaluation`, so it
can be property-tested and replayed over history under a draft policy.

Rounding happens in one place, `rounding.percent_of`; the policy is prepared once
(`compiled`) and the referrer's lines go through `limits.within_limits`.

Order of the referrer's lines: the base or tier line first, then the milestone bonus;
each counts as one line for the limits. The friend's line comes last and has no limits.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime

from rewards.money import format_money
from rewards.policies.compiled import CompiledRule, compiled
from rewards.policies.limits import within_limits
from rewards.policies.months import add_months
from rewards.policies.policy import Policy
from rewards.policies.rounding import percent_of
from rewards.policies.wording import ordinal


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


def _reward(rule: CompiledRule, amount: int, currency: str, whom: str) -> tuple[int, str]:
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


def evaluate(policy: Policy, purchase: Purchase, history: History) -> Evaluation:
    """The lines `policy` gives for `purchase`, given the referrer's `history` before it."""
    c = compiled(policy)
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
            paid, text = within_limits(c, value, text, counters, currency, "reward", notes)
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
                paid, text = within_limits(c, bonus, text, counters, currency,
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
