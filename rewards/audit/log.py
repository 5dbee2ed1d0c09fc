"""The staff audit log: who did what to which record, before and after."""

import json
from datetime import date, datetime

from rewards.extensions import db
from rewards.models import Account, AuditEntry


def _json(value) -> str | None:
    if value is None:
        return None

    def default(item):
        if isinstance(item, datetime | date):
            return item.isoformat()
        return str(item)

    return json.dumps(value, sort_keys=True, default=default)


def snapshot(row, *columns: str) -> dict:
    """The named columns of a row, for the before and after of an entry."""
    return {column: getattr(row, column) for column in columns}


def record(account: Account | None, action: str, subject: str, *, before=None, after=None,
           note: str | None = None) -> AuditEntry:
    """Add an entry to the caller's transaction (flushed with it, never committed here)."""
    entry = AuditEntry(account_id=account.id if account else None, action=action,
                       subject=subject, before=_json(before), after=_json(after),
                       note=(note or None) and note[:400])
    db.session.add(entry)
    return entry


def record_download(account: Account, what: str, query: str) -> None:
    """A download of personal data is a staff action too: who took which file, with which
    filters. Committed at once, before the file streams."""
    record(account, "download", what, note=query or "no filters")
    db.session.commit()
