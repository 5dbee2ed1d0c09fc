"""`python -m worker` as production runs it: a separate process on Redis and the database."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

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
