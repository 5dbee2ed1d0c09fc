"""Run the rq worker inside the app context, and a ticker beside it.

The ticker moves queued clicks from Redis into the database about every second, brings
the dashboard's daily rollups up to date every few seconds, and enqueues `sweep` every
minute, so work delayed by an outage is picked up again.
"""

import logging
import sys
import threading

from rq import SimpleWorker

from rewards import create_app
from rewards.jobs import enqueue, sweep
from rewards.queue import get_queue, redis_connection
from rewards.services.clicks import flush_clicks
from rewards.services.rollups import refresh as refresh_rollups

log = logging.getLogger("worker")
SWEEP_EVERY = 60  # seconds
ROLLUPS_EVERY = 5  # seconds


def tick(app, stop: threading.Event) -> None:
    seconds = 0
    while not stop.wait(1.0):
        seconds += 1
        try:
            with app.app_context():
                flush_clicks()
                if seconds % ROLLUPS_EVERY == 0:
                    refresh_rollups()
                if seconds % SWEEP_EVERY == 0:
                    enqueue(sweep)
        except Exception:  # keep ticking through a database or Redis outage
            log.exception("ticker failed; trying again in a second")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    if not app.config["REDIS_URL"]:
        print("REDIS_URL is not set: jobs run inline in the web process, no worker is needed.",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    ticker = threading.Thread(target=tick, args=(app, stop), name="ticker", daemon=True)
    ticker.start()
    try:
        with app.app_context():
            # SimpleWorker runs jobs in this process, inside this app context.
            worker = SimpleWorker([get_queue()], connection=redis_connection())
            worker.work(with_scheduler=True)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
