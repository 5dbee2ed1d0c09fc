"""The Redis connection and rq queue, or None in the embedded setup (no REDIS_URL)."""

from flask import Flask, current_app
from redis import Redis
from rq import Queue

QUEUE_NAME = "rewards"


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.config["INLINE_JOBS"] = not url
    app.extensions["rewards.redis"] = Redis.from_url(url, socket_timeout=5) if url else None


def redis_connection() -> Redis | None:
    return current_app.extensions["rewards.redis"]


def get_queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_connection())
