"""Background jobs: the Redis connection and rq queue, and `enqueue`.

Jobs are named by dotted path (`"rewards.jobs.send_payout"`), so nothing that enqueues
imports the jobs module. With no REDIS_URL (the embedded setup) a job runs inline, its path
resolved the way rq resolves it in a worker.
"""

import logging

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.utils import import_attribute

QUEUE_NAME = "rewards"
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.config["INLINE_JOBS"] = not url
    app.extensions["rewards.redis"] = Redis.from_url(url, socket_timeout=5) if url else None


def redis_connection() -> Redis | None:
    return current_app.extensions["rewards.redis"]


def get_queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_connection())


def enqueue(job: str, *ids) -> bool:
    """Run the job at dotted path `job` with these ids: queued on Redis, or inline without
    it. Call it after the commit. False when Redis refused it: the work is recorded in the
    database, and `sweep` enqueues it again once Redis answers."""
    if current_app.config["INLINE_JOBS"]:
        import_attribute(job)(*ids)
        return True
    try:
        get_queue().enqueue(job, *ids)
    except RedisError:
        log.warning("could not enqueue %s%r; sweep will retry", job, ids)
        return False
    return True
