"""Read model for the audit log page and its CSV: filters, pages, before/after diffs."""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Account, AuditEntry

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    who: str | None = None  # an email, or part of one
    subject: str | None = None  # "payout:12", or a prefix such as "payout"
    since: date | None = None
    until: date | None = None  # inclusive
    errors: tuple[str, ...] = ()

    def as_args(self) -> dict[str, str]:
        args = {"action": self.action, "who": self.who, "subject": self.subject,
                "from": self.since and self.since.isoformat(),
                "to": self.until and self.until.isoformat()}
        return {key: value for key, value in args.items() if value}

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "AuditFilters":
        errors = []

        def text(key, limit):
            value = (args.get(key) or "").strip()
            return value[:limit] or None

        def day(key, label):
            raw = (args.get(key) or "").strip()
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                errors.append(f"The {label} date must look like 2026-01-31.")
                return None

        since, until = day("from", "from"), day("to", "to")
        if since and until and since > until:
            errors.append("The from date is after the to date; nothing can match.")
        return cls(action=text("action", 40), who=text("who", 254),
                   subject=text("subject", 80), since=since, until=until,
                   errors=tuple(errors))


def _conditions(filters: AuditFilters) -> list:
    conditions = []
    if filters.action:
        conditions.append(AuditEntry.action == filters.action)
    if filters.who:
        who = filters.who.lower()
        if who in ("system", "the system"):
            conditions.append(AuditEntry.account_id.is_(None))
        else:
            like = "%" + who.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(AuditEntry.account_id.in_(
                select(Account.id).where(func.lower(Account.email).like(like, escape="\\"))))
    if filters.subject:
        subject = filters.subject.strip()
        if ":" in subject:
            conditions.append(AuditEntry.subject == subject)
        else:  # a kind of record: every payout, every signal...
            conditions.append(AuditEntry.subject.startswith(f"{subject}:", autoescape=True))
    if filters.since:
        conditions.append(AuditEntry.created_at >= datetime.combine(filters.since, time(),
                                                                    tzinfo=UTC))
    if filters.until:
        conditions.append(AuditEntry.created_at < datetime.combine(
            filters.until + timedelta(days=1), time(), tzinfo=UTC))
    return conditions


@dataclass
class Change:
    key: str
    before: str | None
    after: str | None
    changed: bool


@dataclass
class AuditRow:
    entry: AuditEntry
    who: str  # the staff email, or "System"
    changes: list[Change]

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.changed]


@dataclass
class AuditPage:
    rows: list[AuditRow]
    page: int
    has_next: bool


def _load(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def changes(before: str | None, after: str | None) -> list[Change]:
    """Each key of the before and after snapshots, marked when its value changed."""
    old, new = _load(before), _load(after)
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old is None and new is None:
            return []
        if isinstance(new, dict) and old is None:
            return [Change(k, None, _show(v), True) for k, v in sorted(new.items())]
        if isinstance(old, dict) and new is None:
            return [Change(k, _show(v), None, True) for k, v in sorted(old.items())]
        return [Change("value", None if old is None else _show(old),
                       None if new is None else _show(new), old != new)]
    keys = sorted(set(old) | set(new))
    return [Change(k, _show(old[k]) if k in old else None,
                   _show(new[k]) if k in new else None,
                   k not in old or k not in new or old[k] != new[k]) for k in keys]


def entries(filters: AuditFilters, page: int = 1, per_page: int = PAGE_SIZE) -> AuditPage:
    page = max(page, 1)
    found = db.session.execute(
        select(AuditEntry, Account.email)
        .outerjoin(Account, Account.id == AuditEntry.account_id)
        .where(*_conditions(filters))
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1)
    ).all()
    rows = [AuditRow(entry=entry, who=email or "System",
                     changes=changes(entry.before, entry.after))
            for entry, email in found[:per_page]]
    return AuditPage(rows=rows, page=page, has_next=len(found) > per_page)


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).distinct()
                                   .order_by(AuditEntry.action)))


EXPORT_HEADER = ("id", "when", "who", "action", "subject", "before", "after", "note")


def export_rows(filters: AuditFilters, batch: int = 500) -> Iterator[tuple]:
    stmt = (select(AuditEntry, Account.email)
            .outerjoin(Account, Account.id == AuditEntry.account_id)
            .where(*_conditions(filters))
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .execution_options(yield_per=batch))
    for entry, email in db.session.execute(stmt):
        yield (entry.id, entry.created_at.strftime("%Y-%m-%d %H:%M:%S"), email or "System",
               entry.action, entry.subject, entry.before or "", entry.after or "",
               entry.note or "")
