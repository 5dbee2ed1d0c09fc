"""The worker processes' own loop, importable so that `spawn` can start helpers with it."""

import logging
import os
import signal
import threading
import time

from rq import SimpleWorker

from rewards import create_app
from rewards.background import get_queue, redis_connection


def serve(app, *, with_scheduler: bool) -> None:
    """One rq worker in this process: SimpleWorker runs each job here, in the app context."""
    with app.app_context():
        worker = SimpleWorker([get_queue()], connection=redis_connection())
        worker.work(with_scheduler=with_scheduler)


def _stop_with(parent: int) -> None:
    """Stop this helper (as SIGTERM would) once the process that started it is gone."""
    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def helper(parent: int) -> None:
    """A further worker process (started with `spawn`: a fresh interpreter and app)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _stop_with(parent)
    serve(create_app(), with_scheduler=False)
