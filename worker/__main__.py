"""Run the rq workers inside the app context, and a ticker beside them.

`python -m worker [--processes N]`: N worker processes (2 by default), so that a batch of
Stripe events and the rewards of the batch before use two cores. The first process starts
the others and rq's scheduler (with `spawn`) and runs the ticker: queued clicks into the
database every second, the dashboard's rollups every 5 s, `sweep` every minute. SIGTERM or
SIGINT on it stops the others after their current job (killed after 30 s); a helper whose
first process died stops on its own. rq's WorkerPool does not fit: it forks, waits for a
stuck job without end, has no first process for the ticker, and its workers outlive it.
"""

import argparse
import logging
import multiprocessing
import os
import sys
import threading

from rewards import create_app
from rewards.analytics.rollups import refresh as refresh_rollups
from rewards.attribution.clicks import flush_clicks
from rewards.background import enqueue
from worker.processes import helper, scheduler, serve

log = logging.getLogger("worker")
SWEEP_EVERY = 60  # seconds
ROLLUPS_EVERY = 5  # seconds
DEFAULT_PROCESSES = 2
MAX_PROCESSES = 32
HELPER_STOP_SECONDS = 30  # a helper's current job may finish before it is killed


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
                    enqueue("rewards.jobs.sweep")
        except Exception:  # keep ticking through a database or Redis outage
            log.exception("ticker failed; trying again in a second")


def processes(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PROCESSES}")
    return number


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--processes", type=processes, default=DEFAULT_PROCESSES,
                        help=f"worker processes (default {DEFAULT_PROCESSES})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    if not app.config["REDIS_URL"]:
        print("REDIS_URL is not set: jobs run inline in the web process, no worker is needed.",
              file=sys.stderr)
        return 2
    spawn = multiprocessing.get_context("spawn")
    helpers = [spawn.Process(target=scheduler, args=(os.getpid(),), name="scheduler")]
    helpers += [spawn.Process(target=helper, args=(os.getpid(),), name=f"worker-{n}")
                for n in range(2, args.processes + 1)]
    for process in helpers:
        process.start()
    stop = threading.Event()
    ticker = threading.Thread(target=tick, args=(app, stop), name="ticker", daemon=True)
    ticker.start()
    try:
        serve(app)
    finally:
        stop.set()
        for process in helpers:
            process.terminate()
        for process in helpers:
            process.join(HELPER_STOP_SECONDS)
            if process.is_alive():
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
