"""Reading the dashboard's scope (program and date range) from the query string.

The dashboard, its table exports and the raw exports all take the same arguments:
`program` (a slug; empty for all programs) and `range` (7, 30 or 90 days ending today,
UTC, or `custom` with `start` and `end` as YYYY-MM-DD, both included).
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from rewards.analytics.dashboard import Scope
from rewards.extensions import db
from rewards.models import Program, utcnow

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366


class BadScope(ValueError):
    """A query string the dashboard cannot show; the message says what to fix."""


@dataclass(frozen=True)
class Selection:
    scope: Scope
    program: Program | None  # None: all programs
    preset: int | None  # 7, 30, 90, or None for a custom range

    def args(self) -> dict:
        """Query arguments that select this scope again (for links and exports)."""
        args = {"program": self.program.slug} if self.program else {}
        if self.preset:
            return {**args, "range": str(self.preset)}
        return {**args, "range": "custom", "start": self.scope.start.isoformat(),
                "end": self.scope.end.isoformat()}


def _date(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise BadScope(f"The {name} date must be a date like 2026-01-31.") from None


def parse(args, today: date | None = None) -> Selection:
    """The selection the arguments ask for; BadScope when they cannot be shown."""
    today = today or utcnow().date()
    slug = (args.get("program") or "").strip()
    program = None
    if slug:
        program = db.session.scalar(select(Program).where(Program.slug == slug))
        if program is None:
            raise BadScope(f"There is no program {slug!r}.")
    program_ids = (program.id,) if program else None
    wanted = (args.get("range") or str(DEFAULT_DAYS)).strip()
    if wanted != "custom":
        if wanted not in {str(days) for days in PRESETS}:
            raise BadScope("The range must be 7, 30 or 90 days, or custom.")
        days = int(wanted)
        return Selection(Scope(program_ids, today - timedelta(days=days - 1), today),
                         program, days)
    start, end = _date(args.get("start"), "start"), _date(args.get("end"), "end")
    if end < start:
        raise BadScope("The end date must be on or after the start date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadScope(f"A range can cover at most {MAX_DAYS} days.")
    return Selection(Scope(program_ids, start, end), program, None)


def programs() -> list[Program]:
    return list(db.session.scalars(select(Program).order_by(Program.name)))
