"""API keys for the business's servers. A key is shown once; only its SHA-256 is stored.

The keys are 256 random bits, so a fast digest is enough: there is nothing to guess.
"""

import hashlib
import secrets

from sqlalchemy import select, update

from rewards.audit import log as audit
from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account, ApiKey, utcnow

PREFIX = "rk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, account: Account | None = None) -> tuple[ApiKey, str]:
    """A new key and its row; audited (its name and prefix, never the key) in the same
    transaction. `account` is None from the command line."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("An API key needs a name.", field="name")
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name[:120], prefix=key[:10], key_hash=_digest(key))
    db.session.add(row)
    db.session.flush()
    audit.record(account, "create_api_key", f"api_key:{row.id}",
                 after={"name": row.name, "prefix": row.prefix})
    db.session.commit()
    return row, key


def key_for(key: str) -> ApiKey | None:
    if not key.startswith(PREFIX) or len(key) > 100:
        return None
    row = db.session.scalar(select(ApiKey).filter_by(key_hash=_digest(key)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        db.session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        db.session.commit()
    return row
