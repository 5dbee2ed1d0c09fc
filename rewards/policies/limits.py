"""The monthly and lifetime limits on a referrer's lines (bonuses included): what a line
may still pay, and the sentence that says which limit acted."""

from __future__ import annotations

from rewards.money import format_money
from rewards.policies.compiled import CompiledPolicy


def _limit(c: CompiledPolicy, value: int, month_count: int, month_amount: int,
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


def within_limits(c: CompiledPolicy, value: int, text: str,
                  counters: tuple[int, int, int, int], currency: str, what: str,
                  notes: list[str]) -> tuple[int, str]:
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
