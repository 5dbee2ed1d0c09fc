"""Recording link clicks without making the redirect wait on the database.

With Redis, the redirect appends the click to a Redis stream and the worker inserts
clicks in batches about every second (`flush_clicks`); a click read but not inserted is
read again later, and its `uid` makes the insert happen once. Without Redis, the
redirect inserts the click itself.
"""

import hashlib
import hmac
import json
from datetime import datetime

import shortuuid
from flask import current_app
from redis.exceptions import ResponseError
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import Click, utcnow
from ..queue import redis_connection
from .codes import CodeEntry

STREAM = "rewards:clicks"
GROUP = "inserters"
CHANNELS = frozenset({"email", "x", "whatsapp", "linkedin", "qr", "copy"})


def hash_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


def new_visitor_id() -> str:
    return shortuuid.uuid()


def record_click(entry: CodeEntry, *, visitor_id: str, ip: str | None, user_agent: str | None,
                 referrer_host: str | None, channel: str | None) -> None:
    row = {
        "uid": shortuuid.uuid(),
        "program_id": entry.program_id,
        "code_id": entry.code_id,
        "referrer_id": entry.customer_id,
        "visitor_id": visitor_id,
        "ip_hash": hash_ip(ip),
        "user_agent": (user_agent or "")[:300] or None,
        "referrer_host": (referrer_host or "")[:253] or None,
        "channel": channel if channel in CHANNELS else None,
        "created_at": utcnow().isoformat(),
    }
    redis = redis_connection()
    if redis is not None:
        redis.xadd(STREAM, {"c": json.dumps(row)})
        return
    insert_clicks([row])
    db.session.commit()


def insert_clicks(rows: list[dict]) -> None:
    """Insert click rows, skipping any whose uid is already stored (flushed, not committed)."""
    for row in rows:
        if isinstance(row["created_at"], str):
            row["created_at"] = datetime.fromisoformat(row["created_at"])
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(Click).on_conflict_do_nothing(index_elements=["uid"]), rows)


def flush_clicks(consumer: str = "worker", batch: int | None = None) -> int:
    """Move queued clicks from Redis into the database. Returns how many were read."""
    redis = redis_connection()
    if redis is None:
        return 0
    batch = batch or current_app.config["CLICK_BATCH"]
    try:
        redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    total = 0
    # Entries another consumer read but never acknowledged (it died) come back after a minute.
    _, stale, _ = redis.xautoclaim(STREAM, GROUP, consumer, min_idle_time=60_000, count=batch)
    pending = [stale] if stale else []
    while True:
        if not pending:
            answer = redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch)
            if not answer or not answer[0][1]:
                return total
            pending = [answer[0][1]]
        entries = pending.pop()
        ids = [entry_id for entry_id, _ in entries]
        insert_clicks([json.loads(fields[b"c"]) for _, fields in entries])
        db.session.commit()
        redis.xack(STREAM, GROUP, *ids)
        redis.xdel(STREAM, *ids)
        total += len(entries)
