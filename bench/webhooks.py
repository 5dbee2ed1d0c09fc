"""Benchmark the Stripe webhook intake (POST /webhooks/stripe) against a bare Flask app
that only verifies the signature and inserts one row, and optionally time purchases end
to end through a real worker.

    .venv/bin/python bench/webhooks.py [--events N] [--concurrency C] [--rounds R]
        [--database-url postgresql://...] [--redis-url redis://...] [--end-to-end N]
        [--referred-share 0.3] [--referrers 200]

Both apps run under the same gunicorn settings on 127.0.0.1 and get the same load: N
distinct events (a fresh event id and order each), signed beforehand with the webhook
secret and posted by a pool of C threads, each on its own keep-alive http.client
connection. It prints events per second for each and the app/bare ratio (goal >= 0.5).

The goal is for intake as production runs it, with --redis-url: the app verifies, stores
(one insert and its commit), makes sure one `process_stripe_events` job is queued (one
Redis round trip) and answers. Without --redis-url the app runs its jobs inline, so each
request also applies its event (the laptop setup): that run measures intake plus
processing, not intake.

--end-to-end N (needs --database-url and --redis-url) posts N checkout.session.completed
events to the real app with `python -m worker` (its default two processes) running, and
times until every event is processed and its purchase recorded (goal < 60 s).
Before it, the intake runs' queued jobs and the events they left `received` are dropped,
so that it times its own N events only. A share of the events (--referred-share, 0.3 by
default) are referred purchases: each names the referral code of one of --referrers
referrers (added through the customer service before the clock starts, with the example
policy of bench/policy.py published when the program has none), in `client_reference_id`
or `metadata.referral_code` by turns, and each buyer is new. So the timed work includes
attribution, fraud signals (with 200 referrers each code gets about 15 friends within the
hour, over the program's velocity limit of 10), rollup marks and reward computation. The
clock stops once every event is processed and every referred purchase has its rewards;
then the database is checked: every event processed, one purchase per event, the
referred ones attributed to their referrer, one reward set per attributed purchase, and
`check-ledger` clean.

PostgreSQL: give a database of its own (the script migrates it), made afresh for figures
to compare: this machine's PostgreSQL runs without autovacuum, so a database used for many
runs keeps its dead rows and has no planner statistics.
It exits 0 after measuring, 2 when it could not measure.
"""

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import queue
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT))

import redirect as common  # noqa: E402 - bench/redirect.py: gunicorn, ports, serving

GOAL = 0.5
END_TO_END_GOAL = 60.0
WEBHOOK_SECRET = "whsec_bench_" + "0" * 24  # noqa: S105 - a bench-only endpoint secret
PATH = "/webhooks/stripe"


@dataclass
class Run:
    events: int
    seconds: float
    errors: int
    statuses: dict

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per timed run")
    parser.add_argument("--concurrency", type=int, default=16, help="posting threads")
    parser.add_argument("--rounds", type=int, default=3, help="bare/app pairs to run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both apps)")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--database-url", help="a PostgreSQL URL, migrated to the latest "
                        "schema (default: temporary SQLite files)")
    parser.add_argument("--redis-url", help="REDIS_URL for the app (its rq queue must be "
                        "empty); default: none, jobs run inline in the web process")
    parser.add_argument("--end-to-end", type=int, default=0, metavar="N",
                        help="also time N purchases through a real worker")
    parser.add_argument("--referred-share", type=float, default=0.3, metavar="S",
                        help="share of the end-to-end purchases that carry a referral code")
    parser.add_argument("--referrers", type=int, default=200,
                        help="referrers the referred end-to-end purchases name")
    return parser.parse_args(argv)


# --- Events ------------------------------------------------------------------------------


def purchase_event(tag: str, n: int, created: int, code: str | None = None) -> dict:
    """A paid checkout session; with `code`, a referred one naming that referral code
    (in client_reference_id for even n, in metadata.referral_code for odd n)."""
    reference = code if code and n % 2 == 0 else None
    metadata = {"referral_code": code} if code and n % 2 else {}
    return {
        "id": f"evt_{tag}_{n:07d}", "object": "event", "type": "checkout.session.completed",
        "created": created, "api_version": "2024-06-20", "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": f"cs_{tag}_{n:07d}", "object": "checkout.session", "mode": "payment",
            "status": "complete", "payment_status": "paid", "amount_total": 5000,
            "currency": "usd", "payment_intent": f"pi_{tag}_{n:07d}", "customer": None,
            "client_reference_id": reference, "metadata": metadata, "invoice": None,
            "customer_details": {"email": f"buyer-{tag}-{n}@bench.example",
                                 "name": f"Buyer {n}"},
        }},
    }


def signed(events: list[dict], secret: str = WEBHOOK_SECRET) -> list[tuple[bytes, str]]:
    """(body, Stripe-Signature header) for each event, as Stripe signs them."""
    out = []
    stamp = int(time.time())
    for event in events:
        body = json.dumps(event, separators=(",", ":")).encode()
        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        out.append((body, f"t={stamp},v1={mac.hexdigest()}"))
    return out


def make_batch(tag: str, count: int, codes: dict[int, str] | None = None
               ) -> list[tuple[bytes, str]]:
    """`count` signed purchase events; codes: event number -> the referral code it names."""
    now = int(time.time())
    codes = codes or {}
    return signed([purchase_event(tag, n, now, codes.get(n)) for n in range(count)])


def referred_plan(count: int, share: float, codes: list[str]) -> dict[int, str]:
    """Which events carry a referral (spread evenly through the batch) and whose code."""
    referred = round(count * max(0.0, min(share, 1.0))) if codes else 0
    picked = sorted({int(k * count / referred) for k in range(referred)}) if referred else []
    return {n: codes[k % len(codes)] for k, n in enumerate(picked)}


# --- Load --------------------------------------------------------------------------------


def post_all(port: int, batch: list[tuple[bytes, str]], concurrency: int) -> Run:
    """Post every (body, signature) once, from `concurrency` keep-alive connections."""
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in batch:
        work.put(item)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seen: dict[int, int] = {}
        while True:
            try:
                body, signature = work.get_nowait()
            except queue.Empty:
                break
            try:
                connection.request("POST", PATH, body=body, headers={
                    "Content-Type": "application/json", "Stripe-Signature": signature})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            seen[status] = seen.get(status, 0) + 1
        connection.close()
        with lock:
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    errors = sum(count for status, count in statuses.items() if not 200 <= status < 300)
    return Run(len(batch), elapsed, errors, statuses)


def print_run(name: str, run: Run, note: str = "") -> None:
    print(f"  {name:<5} {run.rate:>9.0f} events/s  {run.events} events in {run.seconds:.2f} s"
          f"  ({run.errors} errors; statuses {run.statuses}){note}", flush=True)


# --- Setting up --------------------------------------------------------------------------


def check_queue(redis_url: str) -> None:
    from redis import Redis
    from rq import Queue

    from rewards.background import QUEUE_NAME

    waiting = len(Queue(QUEUE_NAME, connection=Redis.from_url(redis_url)))
    if waiting:
        print(f"{redis_url} already holds {waiting} jobs in '{QUEUE_NAME}'; use an empty db.",
              file=sys.stderr)
        raise SystemExit(2)


def empty_queue(redis_url: str) -> None:
    from redis import Redis
    from rq import Queue

    from rewards.background import QUEUE_NAME
    from rewards.stripe.inbox import QUEUED_KEY

    connection = Redis.from_url(redis_url)
    Queue(QUEUE_NAME, connection=connection).empty()
    # The webhook's "a batch job is queued" mark went with the queue: without this the next
    # events would queue no job until the mark expires (QUEUED_SECONDS in rewards.stripe.inbox).
    connection.delete(QUEUED_KEY)


def prepare(database_url: str) -> None:
    from flask_migrate import upgrade

    from rewards import create_app

    app = create_app()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from rewards.extensions import db
        from rewards.models import Program
        from rewards.people.programs import create_program

        if db.session.scalar(db.select(Program.id).limit(1)) is None:
            create_program("bench-webhooks", name="Bench", currency="usd")
        db.engine.dispose()


def seed_referrers(tag: str, count: int) -> dict[str, int]:
    """Add `count` referrers through the customer service (each with a code), and publish
    the example policy when the default program has none. Returns code -> customer id."""
    from policy import EXAMPLE_DOCUMENT  # bench/policy.py

    from rewards import create_app
    from rewards.extensions import db
    from rewards.people.codes import primary_code
    from rewards.people.customers import find_or_add_customer
    from rewards.people.programs import default_program
    from rewards.policies.versions import current_version, publish

    app = create_app()
    with app.app_context():
        program = default_program()
        if current_version(program.id) is None:
            publish(program, EXAMPLE_DOCUMENT)
        added = [find_or_add_customer(program, f"ref-{tag}-{n}",
                                      f"referrer-{tag}-{n}@bench.example", f"Referrer {n}")[0]
                 for n in range(count)]
        db.session.commit()
        codes = {primary_code(customer).code: customer.id for customer in added}
        db.engine.dispose()
    return codes


def end_to_end_counts(tag: str) -> tuple[int, int, int, int]:
    """(events processed or otherwise done, purchases, attributed purchases, attributed
    purchases whose rewards are computed) for the end-to-end tag."""
    from sqlalchemy import func, select

    from rewards import create_app
    from rewards.extensions import db
    from rewards.models import Conversion, StripeEvent

    app = create_app()
    with app.app_context():
        done = db.session.scalar(select(func.count()).where(
            StripeEvent.event_id.like(f"evt_{tag}_%"), StripeEvent.status != "received"))
        mine = Conversion.order_id.like(f"pi_{tag}_%")
        purchases, attributed, rewarded = db.session.execute(
            select(func.count(), func.count(Conversion.referrer_id),
                   func.count(Conversion.processed_at)).where(mine)).one()
        db.engine.dispose()
    return done, purchases, attributed, rewarded


def verify_end_to_end(tag: str, plan: dict[int, str], referrers: dict[str, int],
                      count: int) -> list[str]:
    """What the database holds after the run, checked; returns the problems found."""
    from sqlalchemy import func, select

    from rewards import create_app
    from rewards.extensions import db
    from rewards.ledger.check import check_ledger
    from rewards.models import Conversion, Reward, StripeEvent

    problems = []
    app = create_app()
    with app.app_context():
        statuses = dict(db.session.execute(
            select(StripeEvent.status, func.count())
            .where(StripeEvent.event_id.like(f"evt_{tag}_%")).group_by(StripeEvent.status)
        ).all())
        if statuses != {"processed": count}:
            problems.append(f"event statuses {statuses}, wanted {count} processed")
        rows = db.session.execute(
            select(Conversion.order_id, Conversion.referrer_id, Conversion.processed_at)
            .where(Conversion.order_id.like(f"pi_{tag}_%"))).all()
        if len(rows) != count:
            problems.append(f"{len(rows)} purchases recorded, wanted {count}")
        wrong = 0
        for order_id, referrer_id, _ in rows:
            code = plan.get(int(order_id.rsplit("_", 1)[1]))
            if referrer_id != (referrers[code] if code else None):
                wrong += 1
        if wrong:
            problems.append(f"{wrong} purchases attributed otherwise than their event says")
        sets = dict(db.session.execute(
            select(Reward.conversion_id, func.count(func.distinct(Reward.role)))
            .join(Conversion, Conversion.id == Reward.conversion_id)
            .where(Conversion.order_id.like(f"pi_{tag}_%")).group_by(Reward.conversion_id)
        ).all())
        attributed = [row for row in rows if row.referrer_id is not None]
        unrewarded = sum(1 for row in attributed if row.processed_at is None)
        if unrewarded:
            problems.append(f"{unrewarded} attributed purchases have no rewards computed")
        if len(sets) != len(attributed):
            problems.append(f"{len(sets)} purchases have rewards, wanted one set for each of "
                            f"the {len(attributed)} attributed")
        problems += [f"check-ledger: {breach}" for breach in check_ledger()]
        db.engine.dispose()
    return problems


def reward_summary(tag: str) -> str:
    from sqlalchemy import func, select

    from rewards import create_app
    from rewards.extensions import db
    from rewards.models import Conversion, FraudSignal, Reward

    app = create_app()
    with app.app_context():
        mine = Conversion.order_id.like(f"pi_{tag}_%")
        by_role = dict(db.session.execute(
            select(Reward.role, func.count())
            .join(Conversion, Conversion.id == Reward.conversion_id).where(mine)
            .group_by(Reward.role)).all())
        sets = db.session.scalar(
            select(func.count(func.distinct(Reward.conversion_id)))
            .join(Conversion, Conversion.id == Reward.conversion_id).where(mine))
        held = db.session.scalar(
            select(func.count()).select_from(Reward).join(
                Conversion, Conversion.id == Reward.conversion_id)
            .where(mine, Reward.status == "on_hold"))
        signals = dict(db.session.execute(
            select(FraudSignal.kind, func.count()).join(
                Conversion, Conversion.referral_id == FraudSignal.referral_id)
            .where(mine).group_by(FraudSignal.kind)).all())
        db.engine.dispose()
    lines = ", ".join(f"{n} {role}" for role, n in sorted(by_role.items()))
    return (f"{sets} reward sets ({lines} lines; {held} on hold); "
            f"fraud signals {signals or 'none'}")


def stored_counts(tag: str) -> tuple[int, int, int]:
    """(events stored, events no longer `received`, purchases recorded) for a tag."""
    from sqlalchemy import func, select

    from rewards import create_app
    from rewards.extensions import db
    from rewards.models import Conversion, StripeEvent

    app = create_app()
    with app.app_context():
        like = f"evt_{tag}_%"
        stored = db.session.scalar(select(func.count()).where(StripeEvent.event_id.like(like)))
        done = db.session.scalar(select(func.count()).where(
            StripeEvent.event_id.like(like), StripeEvent.status != "received"))
        purchases = db.session.scalar(select(func.count()).where(
            Conversion.order_id.like(f"pi_{tag}_%")))
        db.engine.dispose()
    return stored, done, purchases


def check_webhook(port: int) -> None:
    body, signature = make_batch("check" + secrets.token_hex(3), 1)[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", PATH, body=body, headers={"Stripe-Signature": signature,
                                                         "Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read()[:200]
    connection.close()
    print(f"check: POST {PATH} -> {response.status}")
    if not 200 <= response.status < 300:
        print(f"The webhook did not accept a signed event ({response.status} {text!r}); "
              "not benchmarking it.", file=sys.stderr)
        raise SystemExit(2)


# --- Main --------------------------------------------------------------------------------


def intake(args, workdir: Path, database_url: str, bare_url: str) -> str:
    """The timed runs; returns the run's tag (its events' ids begin with evt_<x><tag>)."""
    app_port, bare_port = common.free_port(), common.free_port()
    log = workdir / "gunicorn.log"
    app_cmd = common.gunicorn_command(args, app_port, ROOT, "wsgi:app")
    bare_cmd = common.gunicorn_command(args, bare_port, BENCH_DIR, "bare_webhook_app:app")
    print(f"gunicorn: {args.workers} x {args.worker_class} workers, {args.threads} thread(s);"
          f" {args.concurrency} posting threads, {args.events} events per run; jobs "
          f"{'to ' + args.redis_url if args.redis_url else 'inline (no REDIS_URL)'}")
    os.environ["BARE_DATABASE_URL"] = bare_url
    with common.serve(app_cmd, app_port, log), common.serve(bare_cmd, bare_port, log):
        check_webhook(app_port)
        run_tag = secrets.token_hex(3)
        post_all(bare_port, make_batch(f"wb{run_tag}", min(200, args.events)), args.concurrency)
        post_all(app_port, make_batch(f"wa{run_tag}", min(200, args.events)), args.concurrency)
        bare_runs, app_runs = [], []
        for round_no in range(args.rounds):
            bare_runs.append(post_all(bare_port, make_batch(f"b{run_tag}{round_no}",
                                                            args.events), args.concurrency))
            print_run("bare", bare_runs[-1])
            app_runs.append(post_all(app_port, make_batch(f"a{run_tag}{round_no}",
                                                          args.events), args.concurrency))
            print_run("app", app_runs[-1],
                      f"  app/bare {app_runs[-1].rate / bare_runs[-1].rate:.2f}")
    bare = statistics.median(r.rate for r in bare_runs)
    real = statistics.median(r.rate for r in app_runs)
    errors = sum(r.errors for r in app_runs)
    print()
    print(f"{'median of runs':<22}{'events/s':>10}")
    print(f"{'bare verify + insert':<22}{bare:>10.0f}")
    print(f"{'referral app':<22}{real:>10.0f}")
    verdict = "met" if real / bare >= GOAL and not errors else "NOT met"
    if errors:
        verdict += f" (the app answered {errors} requests with an error)"
    print(f"{'ratio app/bare':<22}{real / bare:>10.2f}   goal >= {GOAL}: {verdict}")
    stored = sum(stored_counts(f"a{run_tag}{n}")[0] for n in range(args.rounds))
    print(f"events stored by the app: {stored} of {sum(r.events for r in app_runs)} posted")
    return run_tag


def drop_unprocessed(run_tag: str) -> int:
    """Delete the intake runs' events that are still `received` (with a queue, nobody
    processed them), so that the end-to-end run times its own events only: the batch job
    applies every received event, these included."""
    from sqlalchemy import delete, or_

    from rewards import create_app
    from rewards.extensions import db
    from rewards.models import StripeEvent

    app = create_app()
    with app.app_context():
        mine = or_(*(StripeEvent.event_id.like(f"evt_{prefix}{run_tag}%")
                     for prefix in ("wa", "a")), StripeEvent.event_id.like("evt_check%"))
        dropped = db.session.execute(
            delete(StripeEvent).where(StripeEvent.status == "received", mine)).rowcount
        db.session.commit()
        db.engine.dispose()
    return dropped


def end_to_end(args, workdir: Path, count: int) -> None:
    if not (args.database_url and args.redis_url):
        print("end to end: skipped, it needs --database-url (PostgreSQL) and --redis-url.")
        return
    port = common.free_port()
    log = workdir / "end-to-end.log"
    tag = "e" + secrets.token_hex(4)
    referrers = seed_referrers(tag, args.referrers) if args.referred_share > 0 else {}
    plan = referred_plan(count, args.referred_share, list(referrers))
    batch = make_batch(tag, count, plan)
    print(f"end to end: {len(plan)} of {count} purchases referred, naming the codes of "
          f"{len(referrers)} referrers", flush=True)
    with open(log, "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, stdout=out,
                                  stderr=out, start_new_session=True)
    try:
        with common.serve(common.gunicorn_command(args, port, ROOT, "wsgi:app"), port, log):
            started = time.perf_counter()
            posted = post_all(port, batch, args.concurrency)
            print(f"end to end: {count} purchases posted in {posted.seconds:.1f} s "
                  f"({posted.errors} errors)", flush=True)
            deadline = started + 10 * END_TO_END_GOAL
            done = purchases = attributed = rewarded = 0
            while time.perf_counter() < deadline:
                done, purchases, attributed, rewarded = end_to_end_counts(tag)
                if done >= count and purchases >= count and attributed >= len(plan) \
                        and rewarded >= attributed:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
    finally:
        common.stop(worker)
    problems = verify_end_to_end(tag, plan, referrers, count)
    complete = done >= count and purchases >= count and rewarded >= attributed >= len(plan)
    verdict = "met" if complete and not problems and elapsed < END_TO_END_GOAL else "NOT met"
    print(f"end to end: {done} of {count} events processed, {purchases} purchases recorded, "
          f"{attributed} attributed ({len(plan)} referred), {rewarded} with rewards computed")
    print(f"end to end: {reward_summary(tag)}")
    for problem in problems:
        print(f"end to end: CHECK FAILED: {problem}")
    print(f"end to end: database checked: "
          f"{'all good, check-ledger clean' if not problems else f'{len(problems)} problems'}")
    print(f"end to end: {count} purchases ({len(plan)} referred) in {elapsed:.1f} s; "
          f"goal < {END_TO_END_GOAL:.0f} s: {verdict}")


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rewards-bench-webhooks-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'app.db'}"
    bare_url = args.database_url or f"sqlite:///{workdir / 'bare.db'}"
    os.environ.update({
        "REWARDS_ENV": "production", "SECRET_KEY": common.SECRET_KEY,
        "DATABASE_URL": database_url, "REDIS_URL": args.redis_url or "",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PUBLIC_BASE_URL": "http://127.0.0.1",
    })
    if args.redis_url:
        check_queue(args.redis_url)
    try:
        prepare(database_url)
        run_tag = intake(args, workdir, database_url, bare_url)
        if args.redis_url:
            empty_queue(args.redis_url)  # the intake runs' jobs: nobody processes them
            drop_unprocessed(run_tag)  # nor their events, left received
        if args.end_to_end:
            end_to_end(args, workdir, args.end_to_end)
    finally:
        if args.redis_url:
            empty_queue(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
