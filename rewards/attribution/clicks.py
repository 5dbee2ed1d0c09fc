"""Recording link clicks without making the redirect wait on the database.

With Redis, the redirect appends the click to a Redis stream (in batches every
CLICK_FLUSH_SECONDS, see click_sender.py) and the worker inserts clicks in batches about
every second (`flush_clicks`); a click read but not inserted is read again later, and its
`uid` makes the insert happen once. Without Redis, the redirect inserts the click itself.
"""

import hmac
import json
import secrets
from datetime import datetime

import shortuuid
from flask import Flask, current_app
from redis.exceptions import ResponseError
from sqlalchemy.dialects import postgresql, sqlite

from rewards.analytics.rollups import touch_clicks
from rewards.attribution.click_sender import ClickSender
from rewards.background import redis_connection
from rewards.extensions import db
from rewards.models import Click, utcnow
from rewards.people.codes import CodeEntry

STREAM = "rewards:clicks"
GROUP = "inserters"
CHANNELS = frozenset({"email", "x", "whatsapp", "linkedin", "qr", "copy"})


def init_app(app: Flask) -> None:
    """With Redis and CLICK_FLUSH_SECONDS > 0, clicks go to the stream in batches."""
    redis = app.extensions["rewards.redis"]
    seconds = app.config["CLICK_FLUSH_SECONDS"]
    sender = ClickSender(redis, STREAM, seconds) if redis is not None and seconds > 0 else None
    app.extensions["rewards.click_sender"] = sender


def hash_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.digest(key, ip.encode(), "sha256").hex()[:32]


def new_visitor_id() -> str:
    return shortuuid.uuid()


def record_click(entry: CodeEntry, *, visitor_id: str, ip: str | None, user_agent: str | None,
                 referrer_host: str | None, channel: str | None) -> None:
    row = {
        "uid": secrets.token_hex(16),  # 32 characters, the column's size
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
    _store(row)


def _store(row: dict) -> None:
    """Onto the Redis stream, in the next batch or at once; without Redis, into the database."""
    redis = redis_connection()
    if redis is None:
        insert_clicks([row])
        db.session.commit()
        return
    sender = current_app.extensions["rewards.click_sender"]
    if sender is not None:
        sender.add(json.dumps(row))
    else:
        redis.xadd(STREAM, {"c": json.dumps(row)})


def insert_clicks(rows: list[dict]) -> None:
    """Insert click rows, skipping any whose uid is already stored (flushed, not committed)."""
    for row in rows:
        if isinstance(row["created_at"], str):
            row["created_at"] = datetime.fromisoformat(row["created_at"])
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(Click).on_conflict_do_nothing(index_elements=["uid"]), rows)
    touch_clicks(rows)


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
