"""Numbers as the explanations of rewards write them: percentages and ordinals."""

from __future__ import annotations


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
