"""`python -m worker` as production runs it: a separate process on Redis and the database."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from rq import Worker
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from rewards.background import QUEUE_NAME, get_queue
from rewards.extensions import db
from rewards.models import Click, Conversion

from .test_jobs import purchase, redis_app, setup_referrer  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def running_worker(app, url):
    """`python -m worker` on the app's database and Redis, stopped afterwards."""
    env = os.environ | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": url,
        "SECRET_KEY": "worker-test",
    }
    worker = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def output(worker) -> str:
    return worker.stdout.read1().decode() if worker.stdout else ""


def test_worker_process_runs_jobs_and_moves_clicks(redis_app, redis_url):  # noqa: F811
    client, headers, code = setup_referrer(redis_app)
    for _ in range(3):
        client.get(f"/r/{code}")
    assert purchase(client, headers, code).status_code == 201
    with running_worker(redis_app, redis_url) as worker:
        def done():
            with redis_app.app_context():
                processed = db.session.scalar(select(Conversion.processed_at))
                clicks = db.session.scalar(select(func.count(Click.id)))
                db.session.rollback()
                return processed is not None and clicks == 3

        assert wait_for(done), output(worker)


def rq_workers(app) -> dict[str, int]:
    """Name -> process id of each rq worker registered on the app's Redis."""
    with app.app_context():
        return {worker.name: worker.pid
                for worker in Worker.all(connection=get_queue().connection)}


def scheduling(app) -> bool:
    """Whether an rq scheduler holds the queue's lock on the app's Redis."""
    with app.app_context():
        key = RQScheduler.get_locking_key(QUEUE_NAME)
        return bool(get_queue().connection.exists(key))


def test_the_worker_runs_two_processes_and_stops_them_together(redis_app, redis_url):  # noqa: F811
    with running_worker(redis_app, redis_url) as worker:
        assert wait_for(lambda: len(rq_workers(redis_app)) == 2), output(worker)
        assert worker.pid in rq_workers(redis_app).values()
        assert wait_for(lambda: scheduling(redis_app)), output(worker)
    assert worker.returncode == 0
    # The helper finished its warm shutdown too, and unregistered; the scheduler let go.
    assert wait_for(lambda: rq_workers(redis_app) == {}, 15)
    assert not scheduling(redis_app)


def test_a_helper_and_the_scheduler_stop_when_the_first_process_dies(redis_app, redis_url):  # noqa: F811
    with running_worker(redis_app, redis_url) as worker:
        assert wait_for(lambda: len(rq_workers(redis_app)) == 2), output(worker)
        assert wait_for(lambda: scheduling(redis_app)), output(worker)
        [helper] = [name for name, pid in rq_workers(redis_app).items() if pid != worker.pid]
        worker.kill()  # no chance to stop the others itself
        worker.wait(timeout=10)
        assert wait_for(lambda: helper not in rq_workers(redis_app), 15)
        assert wait_for(lambda: not scheduling(redis_app), 15)
        # Nothing of the dead process still waits on the queue to take the next job.
        with redis_app.app_context():
            get_queue().enqueue("rewards.jobs.sweep")
            assert get_queue().count == 1


def test_the_number_of_processes_is_checked():
    result = subprocess.run([sys.executable, "-m", "worker", "--processes", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--processes: must be 1 to 32" in result.stderr
