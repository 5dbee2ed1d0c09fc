"""Benchmark the referral redirect (GET /r/<code>) against a bare Flask 302.

    .venv/bin/python bench/redirect.py [--seconds N] [--connections C] [--no-redis]

Serves the real app (`wsgi:app`, production config) and bench/bare_app.py under the same
gunicorn settings on 127.0.0.1, drives both alternately with wrk for the same time, and
prints requests per second, p50 and p99 for each and the app/bare ratio (goal: >= 0.9).
Afterwards it moves the queued clicks into the database and checks that one click was
stored per request, so the numbers come from an app that did its work. It always exits 0
after measuring; 2 means it could not measure (no wrk, no Redis, a busy Redis db).

The app's environment passes through: CLICK_FLUSH_SECONDS=0 benches one XADD per click
instead of batches (rewards/attribution/click_sender.py).
"""

import argparse
import contextlib
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
GOAL = 0.9
SECRET_KEY = "bench-secret-key-not-for-production"  # noqa: S105 - fixed so runs compare
DESTINATION = "https://shop.example/welcome"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
REFERER = "https://news.example/item?id=4242"
WARMUP_SECONDS = 2


@dataclass
class Run:
    """One wrk run: throughput, latency percentiles (ms) and what went wrong."""

    rps: float
    p50: float
    p99: float
    requests: int
    errors: int


@dataclass
class Seed:
    code: str
    code_id: int
    customer_id: int
    program_id: int


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each timed run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="bare/app pairs to run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both apps)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--database-url", help="a PostgreSQL URL, migrated to the latest schema; "
                        "what the bench adds is removed after (default: a temporary SQLite file)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-redis", action="store_true",
                        help="no REDIS_URL: the redirect inserts each click itself")
    parser.add_argument("--landing", action="store_true",
                        help="a program without destination: clicks go to the landing page")
    return parser.parse_args(argv)


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed. Install it with:\n    apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    return wrk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Redis -------------------------------------------------------------------------------


def bench_redis(url: str):
    """A connection to the bench Redis db, refusing one that already holds queued clicks."""
    from redis import Redis
    from redis.exceptions import RedisError

    from rewards.attribution.clicks import STREAM

    client = Redis.from_url(url, socket_timeout=5)
    try:
        queued = client.xlen(STREAM) if client.exists(STREAM) else 0
    except RedisError as exc:
        print(f"Redis at {url} is not usable ({exc}); pass --redis-url or --no-redis.",
              file=sys.stderr)
        sys.exit(2)
    if queued:
        print(f"{url} already holds {queued} queued clicks in '{STREAM}'. Use an empty db, or "
              f"delete the stream if it is a leftover bench run.", file=sys.stderr)
        sys.exit(2)
    return client


def drop_stream(client) -> None:
    from redis.exceptions import ResponseError

    from rewards.attribution.clicks import GROUP, STREAM

    with contextlib.suppress(ResponseError):
        client.xgroup_destroy(STREAM, GROUP)
    client.delete(STREAM)


# --- The database ----------------------------------------------------------------------


def make_app():
    """The real app with the bench environment (already in os.environ)."""
    from rewards import create_app

    return create_app()


def prepare_database(app, landing: bool) -> Seed:
    """Migrate the schema and add a program and a customer with a referral code."""
    from flask_migrate import upgrade

    from rewards.extensions import db
    from rewards.people.codes import primary_code
    from rewards.people.customers import find_or_add_customer
    from rewards.people.programs import create_program

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        slug = "bench-" + secrets.token_hex(4)
        program = create_program(slug, name="Bench", currency="usd",
                                 destination_url=None if landing else DESTINATION)
        customer, _ = find_or_add_customer(program, f"{slug}-referrer", f"{slug}@bench.example")
        code = primary_code(customer)
        seed = Seed(code.code, code.id, customer.id, program.id)
        db.session.commit()
    return seed


def flush_and_count(app, seed: Seed) -> int:
    """Move queued clicks into the database; the number of clicks stored on the bench code."""
    from sqlalchemy import func, select

    from rewards.attribution.clicks import flush_clicks
    from rewards.extensions import db
    from rewards.models import Click

    with app.app_context():
        flush_clicks(consumer="bench")
        count = db.session.scalar(select(func.count()).where(Click.code_id == seed.code_id))
        db.session.remove()
    return count


def drop_seed(app, seed: Seed) -> None:
    """Remove what the bench added to a database it did not create."""
    from sqlalchemy import delete

    from rewards.extensions import db
    from rewards.models import Click, Customer, Program, ReferralCode

    with app.app_context():
        db.session.execute(delete(Click).where(Click.code_id == seed.code_id))
        db.session.execute(delete(ReferralCode).where(ReferralCode.customer_id == seed.customer_id))
        db.session.execute(delete(Customer).where(Customer.id == seed.customer_id))
        db.session.execute(delete(Program).where(Program.id == seed.program_id))
        db.session.commit()
        db.engine.dispose()


# --- Serving ---------------------------------------------------------------------------


def gunicorn_command(args, port: int, chdir: Path, module: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--threads", str(args.threads),
        "--chdir", str(chdir),
        "--log-level", "warning",
        module,
    ]


@contextlib.contextmanager
def serve(command: list[str], port: int, log_path: Path):
    """Run gunicorn until the block ends; wait until it answers HTTP first."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_ready(process, port, log_path)
        yield
    finally:
        stop(process)


def wait_ready(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 30) -> None:
    # Not a referral code (codes have no dash unless vanity), so no click is recorded.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            get(port, "/r/bench-ready")
            return
        time.sleep(0.1)
    print(f"gunicorn did not start; its log:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
    raise SystemExit(2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: master and workers
            process.wait()


def get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def check_redirect(port: int, seed: Seed) -> None:
    """One request by hand: the real app must answer 302 with the visitor cookie."""
    response = get(port, f"/r/{seed.code}?s=x", {"User-Agent": USER_AGENT, "Referer": REFERER})
    cookie = response.getheader("Set-Cookie") or ""
    location = response.getheader("Location") or ""
    print(f"check: {response.status} -> {location}\n       Set-Cookie: {cookie}")
    if response.status != 302 or not cookie.startswith("rv="):
        print("The redirect did not answer as expected; not benchmarking it.", file=sys.stderr)
        raise SystemExit(2)


# --- Load ------------------------------------------------------------------------------


def run_wrk(wrk: str, args, url: str, seconds: int) -> Run:
    command = [
        wrk, "--threads", str(args.wrk_threads), "--connections", str(args.connections),
        "--duration", f"{seconds}s", "--timeout", "5s", "--latency",
        "-H", f"User-Agent: {USER_AGENT}", "-H", f"Referer: {REFERER}", url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Run:
    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"unexpected wrk output:\n{output}")
        return match.group(1)

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    bad_status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(bad_status.group(1)) if bad_status else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Run(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50=_ms(find(r"^\s+50%\s+(\S+)$")),
        p99=_ms(find(r"^\s+99%\s+(\S+)$")),
        requests=int(find(r"(\d+) requests in")),
        errors=errors,
    )


def median_run(runs: list[Run]) -> Run:
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50=statistics.median(r.p50 for r in runs),
        p99=statistics.median(r.p99 for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
    )


# --- Reporting -------------------------------------------------------------------------


def print_run(name: str, run: Run, note: str = "") -> None:
    print(f"  {name:<5} {run.rps:>10.0f} rps  p50 {run.p50:>7.2f} ms  p99 {run.p99:>7.2f} ms"
          f"  ({run.requests} requests, {run.errors} errors){note}", flush=True)


def print_table(bare: Run, app: Run) -> None:
    ratio = app.rps / bare.rps
    print()
    print(f"{'median of runs':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, run in (("bare Flask 302", bare), ("referral app", app)):
        print(f"{name:<16}{run.rps:>10.0f}{run.p50:>10.2f}{run.p99:>10.2f}")
    verdict = "met" if ratio >= GOAL and not app.errors else "NOT met"
    if app.errors:
        verdict += f" (the app answered {app.errors} requests wrongly)"
    print(f"{'ratio app/bare':<16}{ratio:>10.2f}   goal >= {GOAL}: {verdict}")


def print_clicks(stored: int, requests: int, slack: int) -> None:
    """wrk counts answers it read; a few requests in flight when it stops are served too."""
    ok = requests <= stored <= requests + slack
    verdict = "OK" if ok else "MISMATCH"
    print(f"clicks stored: {stored} for {requests} requests answered to wrk and the check "
          f"(up to {slack} more may have been in flight at the end of the runs): {verdict}")


# --- Main ------------------------------------------------------------------------------


def bench_environment(args, database_url: str, port: int) -> dict:
    return {
        "REWARDS_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": "" if args.no_redis else args.redis_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }


def measure(args, wrk: str, app_url: str, bare_url: str, after_app_run) -> tuple[Run, Run]:
    """Warm both up, then alternate bare and app runs; the median of each."""
    print(f"warm-up: {WARMUP_SECONDS}s each")
    run_wrk(wrk, args, bare_url, WARMUP_SECONDS)
    after_app_run(run_wrk(wrk, args, app_url, WARMUP_SECONDS))
    bare_runs, app_runs = [], []
    for _ in range(args.rounds):
        bare_runs.append(run_wrk(wrk, args, bare_url, args.seconds))
        print_run("bare", bare_runs[-1])
        app_runs.append(run_wrk(wrk, args, app_url, args.seconds))
        print_run("app", app_runs[-1], f"  app/bare {app_runs[-1].rps / bare_runs[-1].rps:.2f}")
        after_app_run(app_runs[-1])
    return median_run(bare_runs), median_run(app_runs)


def main(argv=None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="rewards-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    app_port, bare_port = free_port(), free_port()
    os.environ.update(bench_environment(args, database_url, app_port))
    sys.path.insert(0, str(ROOT))  # `config` and `rewards` from this checkout
    redis = None if args.no_redis else bench_redis(args.redis_url)
    app = make_app()
    seed = prepare_database(app, args.landing)
    try:
        return bench(args, wrk, app, seed, workdir, (app_port, bare_port))
    finally:
        if redis is not None:
            drop_stream(redis)
        if args.database_url:
            drop_seed(app, seed)
        shutil.rmtree(workdir, ignore_errors=True)


def clicks_path(args, app) -> str:
    if args.no_redis:
        return "inserted into the database by the redirect"
    seconds = app.config.get("CLICK_FLUSH_SECONDS", 0)  # 0 also for code before batching
    batches = f"batches every {seconds:g} s" if seconds > 0 else "one XADD per click"
    return f"sent to {args.redis_url} ({batches}; CLICK_FLUSH_SECONDS)"


def bench(args, wrk: str, app, seed: Seed, workdir: Path, ports: tuple[int, int]) -> int:
    app_port, bare_port = ports
    print(f"gunicorn: {args.workers} x {args.worker_class} workers, {args.threads} thread(s); "
          f"wrk: {args.wrk_threads} threads, {args.connections} connections; "
          f"clicks {clicks_path(args, app)}")
    log = workdir / "gunicorn.log"
    app_command = gunicorn_command(args, app_port, ROOT, "wsgi:app")
    bare_command = gunicorn_command(args, bare_port, BENCH_DIR, "bare_app:app")
    answered = [1]  # the check request

    def after_app_run(run: Run) -> None:
        answered.append(run.requests)

    with serve(app_command, app_port, log), serve(bare_command, bare_port, log):
        check_redirect(app_port, seed)
        path = f"/r/{seed.code}?s=x"
        bare, real = measure(args, wrk, f"http://127.0.0.1:{app_port}{path}",
                             f"http://127.0.0.1:{bare_port}{path}", after_app_run)
    print_table(bare, real)
    slack = args.connections * (args.rounds + 1)
    print_clicks(flush_and_count(app, seed), sum(answered), slack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
