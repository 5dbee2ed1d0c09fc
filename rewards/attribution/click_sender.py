"""Clicks on their way to the Redis stream, sent in batches through a redis-py pipeline.

The redirect queues each click (`add`) instead of waiting on Redis; a thread in each
process (a fork starts its own) sends the queue every CLICK_FLUSH_SECONDS, and what is
left is sent at exit. While Redis is unreachable the clicks are kept and sent again on the
next tick, up to `limit` per process; beyond it the oldest are dropped, and every loss is
logged. A process killed outright loses the clicks of its last CLICK_FLUSH_SECONDS.
"""

import atexit
import logging
import os
import threading

from redis import Redis

log = logging.getLogger(__name__)


class ClickSender:
    def __init__(self, redis: Redis, stream: str, seconds: float, limit: int = 50_000):
        self.redis = redis
        self.stream = stream
        self.seconds = seconds
        self.limit = limit
        self._payloads: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pid: int | None = None  # the process whose thread sends; a fork needs its own

    def add(self, payload: str) -> None:
        """Queue one click (its JSON) for the next batch."""
        with self._lock:
            self._payloads.append(payload)
            if self._pid != os.getpid():
                self._start()

    def close(self) -> None:
        """Stop sending in the background, and send what is left (at exit)."""
        self._stop.set()
        self.flush()
        if self._payloads:
            log.error("lost %d clicks at exit: Redis is unreachable", len(self._payloads))

    def flush(self) -> int:
        """Send every queued click now. Returns how many were sent."""
        with self._lock:
            payloads, self._payloads = self._payloads, []
        if not payloads:
            return 0
        try:
            self._send(payloads)
        except Exception:
            self._put_back(payloads)
            log.exception("could not send %d clicks to Redis; trying again", len(payloads))
            return 0
        return len(payloads)

    def _send(self, payloads: list[str]) -> None:
        """One XADD per click, written at once and the replies read after.

        A batch sent again after a half-failed attempt (redis-py's retry, or ours on the
        next tick) is harmless: each click has a uid, and the database stores it once.
        """
        with self.redis.pipeline(transaction=False) as pipeline:
            for payload in payloads:
                pipeline.xadd(self.stream, {"c": payload})
            pipeline.execute()

    def _put_back(self, payloads: list[str]) -> None:
        with self._lock:
            self._payloads[:0] = payloads
            excess = len(self._payloads) - self.limit
            if excess > 0:
                del self._payloads[:excess]
                log.error("dropped the %d oldest clicks: Redis is unreachable and %d wait",
                          excess, self.limit)

    def _start(self) -> None:
        """Start this process's sending thread (called with the lock held)."""
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="click-sender", daemon=True).start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self.flush()
