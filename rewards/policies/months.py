"""Calendar months in UTC, as monthly limits and `{"within_months": N}` count them."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime


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
