"""What the helper processes of `python -m worker` run, importable so that `spawn` can start
them: a further rq worker, or rq's scheduler. A helper stops (as on SIGTERM) once the first
process is gone."""

import logging
import os
import signal
import threading
import time

from rq import SimpleWorker
from rq.scheduler import RQScheduler

from rewards import create_app
from rewards.background import get_queue, redis_connection


def serve(app) -> None:
    """One rq worker in this process: SimpleWorker runs each job here, in the app context."""
    with app.app_context():
        SimpleWorker([get_queue()], connection=redis_connection()).work()


def _stop_with(parent: int) -> None:
    """Stop this helper (as SIGTERM would) once the process that started it is gone."""
    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _helper_app(parent: int):
    """A helper's logging, its watch on the first process, and its own app."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _stop_with(parent)
    return create_app()


def helper(parent: int) -> None:
    """A further worker process."""
    serve(_helper_app(parent))


def scheduler(parent: int) -> None:
    """rq's scheduler. Not `work(with_scheduler=True)`: that forks it from the worker, and the
    fork outlives a killed first process still holding that worker's blocked dequeue, which
    then takes the next job from the queue. A spawned process holds no such socket."""
    with _helper_app(parent).app_context():
        RQScheduler([get_queue()], connection=redis_connection()).work()
