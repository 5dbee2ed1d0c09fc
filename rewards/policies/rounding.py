"""The one rounding rule of rewards: half up (ties away from zero) to the minor unit.

`percent_of` takes a percentage of a purchase with Decimal; `pro_rata` takes a share (of a
reward, for a refund) with exact integer arithmetic. Both round the same way.
"""

from __future__ import annotations

from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal

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
