"""Benchmark the marketing dashboard (GET /marketing) on a year of synthetic data.

    .venv/bin/python bench/dashboard.py [--database-url postgresql://...]
        [--clicks 100000,1000000] [--repeat N] [--keep] [--profile] [--seed S]

For each click count it builds a fresh database with the app's migrations (a temporary
SQLite file, or with --database-url a scratch database `bench_dashboard_<clicks>` created
on that PostgreSQL server and dropped afterwards), bulk-loads a year of synthetic data
(bench/dashboard_data.py) through the models' tables (bench/table_rows.py: executemany on
SQLite, COPY on PostgreSQL), times `rollups.rebuild` (what `flask rewards rebuild-rollups`
costs), then logs in as a marketing account through the login form and times
`GET /marketing` in process with the test client (the wall time of the request is the
server's work) for the last 90 days (`range=90`) and the last 365 days (`range=custom`).
Every size is built first and then timed in turn, request by request, so that both share
whatever else the machine is doing and their ratio stays fair. Each range is requested
once to warm up, then --repeat times; it prints the median and p95, and for reference the
median of the same request when today's day was marked changed just before (the page's
`refresh()` then recounts it, as after new clicks) and of `dashboard.report()` alone.
After the rebuild it checks that the rollups count every loaded click and signup.

The data (the issue's figures, described in bench/dashboard_data.py) scales with the
clicks: per 1,000,000 clicks, 100,000 signups and 20,000 purchases, with 2,000 referrers
at every scale, so the 1,000,000-click database is ten times the 100,000-click one in
every raw table and the ratio of their times says how the page grows with the data.

Goals (issue #6): at 1,000,000 clicks under 150 ms on PostgreSQL and 300 ms on SQLite,
and the 1,000,000-click time at most 1.3 times the 100,000-click time. On PostgreSQL the
tables are ANALYZEd after the load and after the rebuild, as autovacuum would; SQLite is
left as the app leaves it (no ANALYZE). Exits 0 after measuring, 2 when it could not.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from dashboard_data import Plan, ProgramSeed, load_data, step  # noqa: E402 - bench/
from policy import EXAMPLE_DOCUMENT  # noqa: E402 - bench/policy.py: the API.md example policy
from scratch_database import ScratchDatabase  # noqa: E402 - bench/
from table_rows import TableRows  # noqa: E402 - bench/

GOAL_MS = {"sqlite": 300.0, "postgresql": 150.0}  # at 1,000,000 clicks
RATIO_GOAL = 1.3  # 1,000,000-click time over 100,000-click time
FULL_CLICKS = 1_000_000
PASSWORD = "tulip-harbor-42-bench"  # noqa: S105 - the bench's own throwaway account
EMAIL = "marketing@bench.example"
RANGES = ("90 days", "365 days")


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)  # milliseconds

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Result:
    backend: str
    plan: Plan
    what: str  # "GET /marketing", or "refresh()+report()" while the page is not ready
    load_seconds: float
    rebuild_seconds: float
    rebuild_days: int
    request: dict[str, Timing]
    marked: dict[str, Timing]
    report: dict[str, Timing]
    rows: dict[str, int]
    load: tuple[float, float]  # load average (1 min) before and after the timings


# --- Measuring ---------------------------------------------------------------------------


def make_app(url: str):
    from config import TestingConfig
    from rewards import create_app

    return create_app(TestingConfig, {"SQLALCHEMY_DATABASE_URI": url})


def seed_app(app) -> list[ProgramSeed]:
    """Programs (USD, the default, and EUR), their published policies, a marketing login."""
    from rewards.extensions import db
    from rewards.people.accounts import create_account
    from rewards.people.programs import create_program
    from rewards.policies.versions import publish

    seeds = []
    with app.app_context():
        for slug, name, currency in (("bench", "Bench Club", "usd"),
                                     ("bench-eu", "Bench Club Europe", "eur")):
            program = create_program(slug, name=name, currency=currency, window_days=30)
            document = dict(EXAMPLE_DOCUMENT, currency=currency)
            version = publish(program, document)
            seeds.append(ProgramSeed(program.id, currency, version.id))
        create_account(EMAIL, PASSWORD, "marketing", "Bench Marketing")
        db.session.remove()
    return seeds


def log_in(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if not match:
        raise SystemExit("no CSRF token on /login")
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                           "csrf_token": match.group(1)})
    if response.status_code != 302:
        raise SystemExit(f"logging in answered {response.status_code}")


def urls(today: date) -> dict[str, str]:
    start = today - timedelta(days=364)
    return {"90 days": "/marketing?range=90",
            "365 days": f"/marketing?range=custom&start={start}&end={today}"}


def scope_of(name: str, today: date):
    from rewards.analytics.dashboard import Scope

    days = 90 if name == "90 days" else 365
    return Scope(None, today - timedelta(days=days - 1), today)


def page_calls_report(client, url: str) -> bool:
    """Whether the page at `url` calls dashboard.report() and rollups.refresh()."""
    from rewards.analytics import dashboard, rollups

    wanted = {dashboard.report.__code__, rollups.refresh.__code__}
    seen = set()

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in wanted:
            seen.add(frame.f_code)

    sys.setprofile(hook)
    try:
        response = client.get(url)
    finally:
        sys.setprofile(None)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    return seen == wanted


def timed(function, repeat: int) -> Timing:
    timing = Timing()
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        timing.samples.append((time.perf_counter() - began) * 1000)
    return timing


def mark_today(app, programs: list[ProgramSeed]) -> None:
    from rewards.analytics.rollups import touch
    from rewards.extensions import db
    from rewards.models import utcnow

    with app.app_context():
        for program in programs:
            touch(program.id, utcnow())
        db.session.commit()
        db.session.remove()


class Bench:
    """One built database and what is needed to time its page."""

    def __init__(self, args, plan: Plan):
        self.plan = plan
        self.database = ScratchDatabase(args.database_url, f"dashboard_{plan.label}", args.keep)
        self.backend = self.database.backend
        self.app = make_app(self.database.url)
        self.programs: list[ProgramSeed] = []
        self.client = None
        self.ready = False
        self.runs: dict[str, callable] = {}
        self.report_alone: dict[str, callable] = {}

    def prepare(self, today: date) -> None:
        """Log in, find out whether the page is the dashboard, and set up the timed calls."""
        from rewards.analytics.dashboard import report
        from rewards.analytics.rollups import refresh
        from rewards.extensions import db

        app = self.app
        self.client = client = app.test_client()
        log_in(client)
        addresses = urls(today)
        self.ready = page_calls_report(client, addresses["90 days"])
        for name in RANGES:
            url, scope = addresses[name], scope_of(name, today)

            def get(url=url):
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"GET {url} answered {response.status_code}")

            def recount_and_report(scope=scope):
                with app.app_context():
                    refresh()
                    report(scope)
                    db.session.remove()

            def report_alone(scope=scope):
                with app.app_context():
                    report(scope)
                    db.session.remove()

            self.runs[name] = get if self.ready else recount_and_report
            self.report_alone[name] = report_alone
            self.runs[name]()  # warm up
            report_alone()

    @property
    def what(self) -> str:
        return "GET /marketing" if self.ready else "refresh()+report()"

    def close(self) -> None:
        from rewards.extensions import db

        with self.app.app_context():
            db.engine.dispose()
        self.database.drop()


def measure(benches: list[Bench], repeat: int, profile: bool) -> dict:
    """Time every bench's page, taking the sizes in turn request by request so that they
    share whatever else the machine is doing. {(bench index, range): (request, today
    marked, report() alone)} as Timings."""
    from rewards.models import utcnow

    today = utcnow().date()
    for bench in benches:
        bench.prepare(today)
        if not bench.ready:
            print(f"  {bench.backend} {bench.plan.clicks:,}: the page does not call "
                  "dashboard.report() yet (the old /marketing route): timing "
                  "refresh()+report() in its place", flush=True)
    out = {(n, name): (Timing(), Timing(), Timing())
           for n in range(len(benches)) for name in RANGES}
    for name in RANGES:
        for _ in range(repeat):
            for n, bench in enumerate(benches):
                request, marked, alone = out[(n, name)]
                request.samples += timed(bench.runs[name], 1).samples
                mark_today(bench.app, bench.programs)
                marked.samples += timed(bench.runs[name], 1).samples
                alone.samples += timed(bench.report_alone[name], 1).samples
    if profile:
        for bench in benches:
            for name in RANGES:
                print_profile(f"{bench.backend} {bench.plan.clicks:,} clicks, {bench.what}, "
                              f"{name}", bench.runs[name])
    return out


def print_profile(title: str, function, lines: int = 30) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"/rewards/", lines)  # the app's own code
    print(f"\n  profile of {title} (cumulative, the app's functions and templates):")
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))
    print()


def rollup_rows(app) -> dict[str, int]:
    from sqlalchemy import func, select

    from rewards.analytics.rollups import ROLLUP_TABLES
    from rewards.extensions import db

    with app.app_context():
        counts = {table.__tablename__: db.session.scalar(select(func.count()).select_from(table))
                  for table in ROLLUP_TABLES}
        db.session.remove()
    return counts


def check_rollups(app, plan: Plan, loaded: dict[str, int]) -> None:
    """The rebuilt rollups hold every loaded click and signup."""
    from sqlalchemy import func, select

    from rewards.extensions import db
    from rewards.models import DailyTraffic

    with app.app_context():
        clicks, signups = db.session.execute(
            select(func.sum(DailyTraffic.clicks), func.sum(DailyTraffic.signups))).one()
        db.session.remove()
    if int(clicks) != loaded["clicks"] or int(signups) != loaded["signups"]:
        raise SystemExit(f"the rollups count {clicks} clicks and {signups} signups, "
                         f"{loaded['clicks']} and {loaded['signups']} were loaded")


def build(args, plan: Plan) -> tuple[Bench, dict]:
    """A migrated, loaded and rebuilt database for `plan`; (bench, figures of the build)."""
    from flask_migrate import upgrade

    from rewards.analytics.rollups import rebuild
    from rewards.extensions import db
    from rewards.models import utcnow

    backend = "postgresql" if args.database_url else "sqlite"
    print(f"\n{backend}, {plan.clicks:,} clicks, {plan.signups:,} signups, "
          f"{plan.purchases:,} purchases, {plan.referrers:,} referrers", flush=True)
    bench = Bench(args, plan)
    database, app = bench.database, bench.app
    try:
        began = time.perf_counter()
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            db.session.remove()
        step(f"migrated in {time.perf_counter() - began:.1f}s")
        bench.programs = seed_app(app)

        began = time.perf_counter()
        with database.connect() as connection:
            rows = TableRows(connection)
            load_data(rows, plan, bench.programs, args.seed, utcnow())
        database.after_load(list(rows.counts))
        load_seconds = time.perf_counter() - began
        step(f"loaded in {load_seconds:.1f}s: "
             + ", ".join(f"{n:,} {table}" for table, n in rows.counts.items()))

        began = time.perf_counter()
        with app.app_context():
            days = rebuild([p.id for p in bench.programs])
            db.session.remove()
        rebuild_seconds = time.perf_counter() - began
        step(f"rebuild-rollups: {days:,} program days in {rebuild_seconds:.1f}s")
        database.after_load([])
        check_rollups(app, plan, rows.counts)
        counted = rollup_rows(app)
        step("rollup rows: " + ", ".join(f"{n:,} {table}" for table, n in counted.items()))
    except BaseException:
        bench.close()
        raise
    return bench, {"load": load_seconds, "rebuild": rebuild_seconds, "days": days,
                   "rows": counted}


def print_table(results: list[Result]) -> None:
    print("\n| database | clicks | range | what | median ms | p95 ms | today marked ms "
          "| report() ms | goal |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |")
    largest = max(r.plan.clicks for r in results)
    for r in results:
        for name in RANGES:
            goal = GOAL_MS[r.backend]
            verdict = ""
            if r.plan.clicks == largest == FULL_CLICKS:
                verdict = (f"< {goal:.0f} ms: " +
                           ("met" if r.request[name].median < goal else "MISSED"))
            print(f"| {r.backend} | {r.plan.clicks:,} | {name} | {r.what} | "
                  f"{r.request[name].median:.1f} | {r.request[name].p95:.1f} | "
                  f"{r.marked[name].median:.1f} | {r.report[name].median:.1f} | {verdict} |")
    small = min(results, key=lambda r: r.plan.clicks)
    big = max(results, key=lambda r: r.plan.clicks)
    if big.plan.clicks > small.plan.clicks:
        times = big.plan.clicks / small.plan.clicks
        print(f"\nratio of medians, {big.plan.clicks:,} over {small.plan.clicks:,} clicks "
              f"({times:g} times the data; goal <= {RATIO_GOAL}):")
        for name in RANGES:
            ratio = big.request[name].median / small.request[name].median
            print(f"  {big.backend} {name}: {ratio:.2f} "
                  f"({'met' if ratio <= RATIO_GOAL else 'MISSED'})")
    print()
    for r in results:
        print(f"{r.backend} {r.plan.clicks:,} clicks: loaded in {r.load_seconds:.1f}s, "
              f"rebuild-rollups {r.rebuild_seconds:.1f}s ({r.rebuild_days} program days); "
              "rollup rows: " + ", ".join(f"{n:,} {t}" for t, n in r.rows.items()))
    print(f"load average {results[0].load[0]:.2f} -> {results[0].load[1]:.2f} while timing "
          f"({os.cpu_count()} cores)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server URL; the bench creates "
                        "and drops its own scratch database bench_dashboard_<clicks> there "
                        "(default: temporary SQLite files)")
    parser.add_argument("--clicks", default="100000,1000000",
                        help="comma-separated click counts, one database each; signups and "
                        "purchases scale with them (default: 100000,1000000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per range")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of one request per range and size")
    args = parser.parse_args(argv)
    try:
        args.plans = [Plan.for_clicks(int(n.replace("_", ""))) for n in args.clicks.split(",")]
    except ValueError:
        parser.error("--clicks takes numbers separated by commas, like 100000,1000000")
    if any(p.clicks < 1000 for p in args.plans):
        parser.error("--clicks: at least 1000 each")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    benches: list[Bench] = []
    try:
        built = []
        for plan in args.plans:
            bench, figures = build(args, plan)
            benches.append(bench)
            built.append(figures)
        print(f"\ntiming {args.repeat} requests per range and size, the sizes in turn",
              flush=True)
        load = os.getloadavg()[0]
        timings = measure(benches, args.repeat, args.profile)
        load = (load, os.getloadavg()[0])
        results = [
            Result(bench.backend, bench.plan, bench.what, figures["load"], figures["rebuild"],
                   figures["days"], {name: timings[(n, name)][0] for name in RANGES},
                   {name: timings[(n, name)][1] for name in RANGES},
                   {name: timings[(n, name)][2] for name in RANGES}, figures["rows"], load)
            for n, (bench, figures) in enumerate(zip(benches, built, strict=True))]
    except Exception as exc:  # noqa: BLE001 - report why nothing was measured
        import traceback

        traceback.print_exc()
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    finally:
        for bench in benches:
            bench.close()
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
