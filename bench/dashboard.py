"""Benchmark the marketing dashboard (GET /marketing) on a year of synthetic data.

    .venv/bin/python bench/dashboard.py [--database-url postgresql://...]
        [--clicks 100000,1000000] [--repeat N] [--keep] [--profile] [--seed S]

For each click count it builds a fresh database with the app's migrations (a temporary
SQLite file, or with --database-url a scratch database `bench_dashboard_<clicks>` created
on that PostgreSQL server and dropped afterwards), bulk-loads a year of synthetic data
with the raw driver (sqlite3 executemany, psycopg COPY), times `rollups.rebuild` (what
`flask rewards rebuild-rollups` costs), then logs in as a marketing account through the
login form and times `GET /marketing` in process with the test client (the wall time of
the request is the server's work) for the last 90 days (`range=90`) and the last 365 days
(`range=custom`). Every size is built first and then timed in turn, request by request,
so that both share whatever else the machine is doing and their ratio stays fair. Each
range is requested once to warm up, then --repeat times; it prints the median and p95,
and for reference the median of the same request when today's day was marked changed
just before (the page's `refresh()` then recounts it, as after new clicks) and of
`dashboard.report()` alone.

The data, per 1,000,000 clicks (the issue's figures; 30% of clicks from returning
visitors, from 15 referring hosts and 6 share channels): 100,000 signups (60% referred,
with their referrals), 20,000 purchases (85% referred; 4% refunded, some partly) and the
rewards of referred first purchases in every status, with reversals and clawbacks, over
the last 365 days with weekly variation, growth over the year and a few campaign spikes.
2,000 referrers at every scale, with Zipf-like popularity, 90% in a USD program and 10% in
a EUR one. Signups and purchases scale with the clicks (100,000 clicks: 10,000 signups,
2,000 purchases), so the 1,000,000-click database is ten times the 100,000-click one in
every raw table and the ratio of their times says how the page grows with the data.

Goals (issue #6): at 1,000,000 clicks under 150 ms on PostgreSQL and 300 ms on SQLite,
and the 1,000,000-click time at most 1.3 times the 100,000-click time. On PostgreSQL the
tables are ANALYZEd after the load and after the rebuild, as autovacuum would; SQLite is
left as the app leaves it (no ANALYZE). Exits 0 after measuring, 2 when it could not.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import math
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from policy import EXAMPLE_DOCUMENT  # noqa: E402 - bench/policy.py: the API.md example policy

GOAL_MS = {"sqlite": 300.0, "postgresql": 150.0}  # at 1,000,000 clicks
RATIO_GOAL = 1.3  # 1,000,000-click time over 100,000-click time
FULL_CLICKS = 1_000_000
SIGNUPS_PER_CLICK = 0.1  # 100,000 signups per 1,000,000 clicks
PURCHASES_PER_CLICK = 0.02  # 20,000 purchases per 1,000,000 clicks
REFERRERS = 2_000
PASSWORD = "tulip-harbor-42-bench"  # noqa: S105 - the bench's own throwaway account
EMAIL = "marketing@bench.example"
RANGES = ("90 days", "365 days")
RESERVED_DATABASES = {"postgres", "template0", "template1", "test", "test_b", "test_c",
                      "test_d", "test_e"}

WEEKDAY = (1.0, 1.08, 1.1, 1.05, 0.95, 0.7, 0.62)  # Monday .. Sunday
HOSTS = ((None, 40), ("www.google.com", 14), ("l.facebook.com", 9), ("t.co", 6),
         ("www.linkedin.com", 5), ("mail.google.com", 5), ("www.instagram.com", 4),
         ("outlook.live.com", 3), ("www.reddit.com", 3), ("duckduckgo.com", 2),
         ("news.ycombinator.com", 2), ("web.whatsapp.com", 3), ("www.bing.com", 2),
         ("blog.example.org", 1), ("forum.example.net", 1))
CHANNELS = ((None, 55), ("whatsapp", 15), ("email", 10), ("x", 8), ("linkedin", 7),
            ("qr", 5))
AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
)
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VISITOR_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # shortuuid's


# --- What is loaded ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    clicks: int
    signups: int
    purchases: int
    referrers: int = REFERRERS

    @classmethod
    def for_clicks(cls, clicks: int) -> Plan:
        return cls(clicks, round(clicks * SIGNUPS_PER_CLICK), round(clicks * PURCHASES_PER_CLICK))

    @property
    def label(self) -> str:
        if self.clicks % 1_000_000 == 0:
            return f"{self.clicks // 1_000_000}m"
        if self.clicks % 1_000 == 0:
            return f"{self.clicks // 1_000}k"
        return str(self.clicks)


@dataclass
class ProgramSeed:
    id: int
    currency: str
    policy_version_id: int


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


def step(text: str) -> None:
    print(f"  {text}", flush=True)


class Rows:
    """Writes rows with the raw driver: sqlite3 executemany, or psycopg COPY."""

    def __init__(self, backend: str, connection):
        self.backend = backend
        self.connection = connection
        self.counts: dict[str, int] = {}

    def time(self, moment: datetime) -> str | datetime:
        """A naive UTC value as the app stores it (SQLAlchemy's SQLite text format)."""
        if self.backend == "sqlite":
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def write(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.backend == "sqlite":
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - our names
            for index in range(0, len(rows), 50_000):
                self.connection.executemany(sql, rows[index:index + 50_000])
        else:
            with self.connection.cursor() as cursor, cursor.copy(
                    f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self.connection.commit()
        self.counts[table] = self.counts.get(table, 0) + len(rows)


def _visitor_id(rng: random.Random) -> str:
    """A 22-character id like shortuuid.uuid(), from the seeded generator."""
    number = rng.getrandbits(128)
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 57)
        chars.append(VISITOR_ALPHABET[digit])
    return "".join(chars)


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class Calendar:
    """Moments over the last 365 days (UTC): weekly variation, growth, campaign spikes."""

    def __init__(self, now: datetime, rng: random.Random):
        self.now = now
        today = now.date()
        self.start = datetime.combine(today - timedelta(days=364), datetime.min.time(), UTC)
        self.elapsed_today = (now - datetime.combine(today, datetime.min.time(), UTC)
                              ).total_seconds()
        weights = []
        for n in range(365):
            day = today - timedelta(days=364 - n)
            weights.append(WEEKDAY[day.weekday()] * (0.6 + 0.8 * n / 364))
        for _ in range(6):  # campaigns: a spike that fades over three days
            peak = rng.randrange(365)
            for offset, boost in enumerate((3.0, 1.8, 1.3)):
                if peak + offset < 365:
                    weights[peak + offset] *= boost
        weights[-1] *= self.elapsed_today / 86400
        self.cumulative = _cumulative(weights)

    def seconds(self, rng: random.Random, count: int) -> list[float]:
        """`count` random moments, as seconds since the window's first midnight."""
        days = rng.choices(range(365), cum_weights=self.cumulative, k=count)
        last = 364
        return [day * 86400.0 + rng.random() * (self.elapsed_today if day == last else 86400.0)
                for day in days]

    def moment(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    @property
    def end(self) -> float:
        return (self.now - self.start).total_seconds()


def load_data(rows: Rows, plan: Plan, programs: list[ProgramSeed], seed: int,
              now: datetime) -> None:
    """Bulk-insert customers, codes, clicks, signups, referrals, purchases, refunds,
    rewards and adjustments for `plan` over the year before `now`."""
    rng = random.Random(seed)
    cal = Calendar(now, rng)
    at = rows.time
    end = cal.end

    def program_of(referrer: int) -> ProgramSeed:
        return programs[1] if len(programs) > 1 and referrer % 10 == 0 else programs[0]

    # Referrers and their codes. Customer and code ids of referrers are 1..R.
    referrer_ids = list(range(1, plan.referrers + 1))
    popularity = list(referrer_ids)
    rng.shuffle(popularity)  # popularity rank -> referrer
    referrer_cum = _cumulative(1 / (rank + 1) ** 0.9 for rank in range(plan.referrers))
    customers = []
    codes = []
    taken = set()
    for referrer in referrer_ids:
        program = program_of(referrer)
        created = now - timedelta(days=rng.uniform(400, 800))
        customers.append((referrer, program.id, f"ref-{referrer}",
                          f"referrer{referrer}@bench.example", f"Referrer {referrer}", False,
                          at(created)))
        code = "".join(rng.choice(CODE_ALPHABET) for _ in range(8))
        while code in taken:
            code = "".join(rng.choice(CODE_ALPHABET) for _ in range(8))
        taken.add(code)
        codes.append((referrer, program.id, referrer, code, code.lower(), False, True, True,
                      at(created)))

    customer_columns = ("id", "program_id", "external_id", "email", "name",
                        "stripe_account_ready", "created_at")
    step("inserting referrers and their codes")
    rows.write("customers", customer_columns, customers)
    rows.write("referral_codes", ("id", "program_id", "customer_id", "code", "code_key",
                                  "is_vanity", "is_primary", "active", "created_at"), codes)
    customers = []

    # Clicks, in time order. Some clicks for referred signups are remembered.
    step(f"generating {plan.clicks:,} clicks")
    moments = sorted(cal.seconds(rng, plan.clicks))
    referred_signups = round(plan.signups * 0.6)
    remembered = set(rng.sample(range(plan.clicks), min(referred_signups, plan.clicks)))
    chosen = rng.choices(popularity, cum_weights=referrer_cum, k=plan.clicks)
    hosts = rng.choices([h for h, _ in HOSTS], weights=[w for _, w in HOSTS], k=plan.clicks)
    channels = rng.choices([c for c, _ in CHANNELS], weights=[w for _, w in CHANNELS],
                           k=plan.clicks)
    recent: list[tuple[str, str, str, int]] = []  # (visitor, ip hash, agent, referrer)
    ring = 20_000
    clicks, click_info = [], {}
    for index, seconds in enumerate(moments):
        if recent and rng.random() < 0.3:  # a returning visitor, mostly to the same link
            visitor, ip_hash, agent, referrer = recent[rng.randrange(len(recent))]
            if rng.random() >= 0.85:
                referrer = chosen[index]
        else:
            visitor, ip_hash, agent = _visitor_id(rng), _hex(rng), rng.choice(AGENTS)
            referrer = chosen[index]
            if len(recent) < ring:
                recent.append((visitor, ip_hash, agent, referrer))
            else:
                recent[index % ring] = (visitor, ip_hash, agent, referrer)
        click_id = index + 1
        clicks.append((click_id, _hex(rng), program_of(referrer).id, referrer, referrer, visitor,
                       ip_hash, agent, hosts[index], channels[index],
                       at(cal.moment(seconds))))
        if index in remembered:
            click_info[index] = (click_id, seconds, visitor, referrer)
    step("inserting clicks")
    rows.write("clicks", ("id", "uid", "program_id", "code_id", "referrer_id", "visitor_id",
                          "ip_hash", "user_agent", "referrer_host", "channel", "created_at"),
               clicks)
    del clicks, moments, chosen, hosts, channels

    # Signups: referred ones follow a click (by its visitor id, or the code typed in),
    # the rest come on their own.
    step(f"generating {plan.signups:,} signups")
    pending = []  # (seconds, program, referrer or None, code, click id, visitor, matched_by)
    for click_id, seconds, visitor, referrer in click_info.values():
        later = seconds + rng.expovariate(1 / 7200)  # a couple of hours after the click
        if later >= end:
            later = seconds + (end - seconds) * rng.random()
        by_visitor = rng.random() < 0.8
        pending.append((later, program_of(referrer).id, referrer, referrer,
                        click_id if by_visitor else None, visitor if by_visitor else None,
                        "visitor" if by_visitor else "code"))
    for seconds in cal.seconds(rng, plan.signups - len(pending)):
        program = programs[1] if len(programs) > 1 and rng.random() < 0.1 else programs[0]
        visitor = _visitor_id(rng) if rng.random() < 0.5 else None
        pending.append((seconds, program.id, None, None, None, visitor, None))
    pending.sort(key=lambda row: row[0])
    referrals, signups = [], []
    friends = []  # (customer id, program id, referral id or None, referrer, signed up seconds)
    for index, (seconds, program_id, referrer, code_id, click_id, visitor, matched_by) in \
            enumerate(pending, start=1):
        customer_id = plan.referrers + index
        moment = at(cal.moment(seconds))
        customers.append((customer_id, program_id, f"cus-{customer_id}",
                          f"friend{customer_id}@bench.example", f"Friend {customer_id}",
                          False, moment))
        referral_id = None
        if referrer is not None:
            referral_id = len(referrals) + 1
            reason = ("Referred: the visitor followed the referrer's link."
                      if matched_by == "visitor" else "Referred: the referral code was given.")
            referrals.append((referral_id, program_id, referrer, customer_id, code_id, click_id,
                              matched_by, reason, moment))
        signups.append((index, program_id, customer_id, referral_id, visitor,
                        "web" if rng.random() < 0.7 else "api",
                        "bench" if referral_id is None else reason, moment))
        friends.append((customer_id, program_id, referral_id, referrer, seconds))
    step("inserting friends, signups and referrals")
    rows.write("customers", customer_columns, customers)
    rows.write("referrals", ("id", "program_id", "referrer_id", "friend_id", "code_id",
                             "click_id", "matched_by", "reason", "created_at"), referrals)
    rows.write("signups", ("id", "program_id", "customer_id", "referral_id", "visitor_id",
                           "source", "reason", "created_at"), signups)
    del customers, signups, referrals, pending

    # Purchases: referred friends' first purchases (a few days after signing up) and
    # repeats, and some by customers nobody referred.
    step(f"generating {plan.purchases:,} purchases, refunds and rewards")
    referred = [f for f in friends if f[2] is not None]
    organic = [f for f in friends if f[2] is None]
    rng.shuffle(referred)
    rng.shuffle(organic)
    wanted_referred = round(plan.purchases * 0.85)
    wanted_first = round(wanted_referred * 0.75)
    bought = []  # (seconds, friend tuple, first?)
    firsts = []
    for friend in referred:
        if len(firsts) >= wanted_first:
            break
        seconds = friend[4] + rng.expovariate(1 / (5 * 86400))
        if seconds < end:
            firsts.append((seconds, friend))
    bought += [(s, f, True) for s, f in firsts]
    attempts = 0
    while firsts and len(bought) < wanted_referred and attempts < 20 * plan.purchases:
        attempts += 1
        seconds, friend = rng.choice(firsts)
        seconds += rng.expovariate(1 / (40 * 86400))
        if seconds < end:
            bought.append((seconds, friend, False))
    for friend in organic:
        if len(bought) >= plan.purchases:
            break
        seconds = friend[4] + rng.expovariate(1 / (5 * 86400))
        if seconds < end:
            bought.append((seconds, friend, False))
    bought.sort(key=lambda row: row[0])

    by_program = {p.id: p for p in programs}
    conversions, refunds, rewards, adjustments = [], [], [], []
    for conversion_id, (seconds, friend, first) in enumerate(bought, start=1):
        customer_id, program_id, referral_id, referrer, _ = friend
        program = by_program[program_id]
        occurred = cal.moment(seconds)
        amount = max(100, int(math.exp(rng.gauss(8.3, 0.7))) // 100 * 100 + 99)
        stripe = rng.random() < 0.6
        if referral_id is None:
            matched_by = matched_via = None
            reason = "Not attributed: no code, no click in the window and no referred signup."
        else:
            matched_by = rng.choices(("signup", "code", "visitor"), weights=(7, 2, 1))[0]
            matched_via = ("stripe_customer" if matched_by == "signup" else "metadata") \
                if stripe else None
            reason = "Referred: the buyer's signup was referred."
        refunded = 0
        refund_id = None
        if rng.random() < 0.04 and seconds < end - 3600:
            refunded = amount if rng.random() < 0.65 else amount // rng.choice((2, 4))
            refund_id = len(refunds) + 1
            refunded_at = min(now, occurred + timedelta(seconds=rng.uniform(3600, 20 * 86400)))
            refunds.append((refund_id, conversion_id, f"re_{conversion_id}", refunded, refunded,
                            at(refunded_at)))
        conversions.append((
            conversion_id, program_id, "stripe" if stripe else "api",
            f"{'cs' if stripe else 'ord'}_{conversion_id:08d}", customer_id, referral_id,
            referrer if referral_id else None, amount, program.currency, at(occurred),
            matched_by, matched_via, reason, f"{rng.getrandbits(256):064x}", at(occurred),
            refunded, at(occurred)))
        if not first or amount < EXAMPLE_DOCUMENT["min_purchase"]:
            continue
        share = min(5000, (amount + 5) // 10)
        available_at = occurred + timedelta(days=30)
        held = available_at > now
        roll = rng.random()
        if held:
            status = "on_hold" if roll < 0.03 else "pending"
        else:
            status = ("paid" if roll < 0.55 else "available" if roll < 0.8 else
                      "in_payout" if roll < 0.86 else "on_hold" if roll < 0.9 else
                      "rejected" if roll < 0.92 else "paid")
        if refunded and status in ("in_payout", "rejected"):
            status = "available"
        for role, beneficiary, reward_amount in (("referrer", referrer, share),
                                                  ("friend", customer_id, 500)):
            reward_id = len(rewards) + 1
            reward_status, reversed_amount, paid_amount, paid_at = status, 0, None, None
            taken = (reward_amount * refunded * 2 + amount) // (2 * amount) if refunded else 0
            if status == "paid":
                paid_amount = reward_amount
                paid_at = at(min(now, available_at + timedelta(days=rng.uniform(0, 10))))
                if taken:
                    adjustments.append((
                        len(adjustments) + 1, reward_id, beneficiary, refund_id, "clawback",
                        -taken, program.currency, "owed" if rng.random() < 0.6 else "netted",
                        "Refund after payment: owed back.", refunds[-1][5]))
            elif taken:
                reversed_amount = taken
                if taken == reward_amount:
                    reward_status = "reversed"
                adjustments.append((
                    len(adjustments) + 1, reward_id, beneficiary, refund_id, "reversal",
                    -taken, program.currency, "applied", "Refund before payment: reversed.",
                    refunds[-1][5]))
            explanation = (f"10% of the purchase, capped at 50.00: {reward_amount / 100:.2f}"
                           if role == "referrer" else "The friend's reward: 5.00")
            rewards.append((
                reward_id, program_id, beneficiary, conversion_id, customer_id, role, role,
                program.policy_version_id, reward_amount, reversed_amount, program.currency,
                reward_status, ("pending" if held else "available")
                if reward_status == "on_hold" else None, explanation, at(occurred),
                at(available_at), paid_amount, paid_at, at(occurred)))
    step("inserting purchases, refunds, rewards and adjustments")
    rows.write("conversions", (
        "id", "program_id", "source", "order_id", "customer_id", "referral_id", "referrer_id",
        "amount", "currency", "occurred_at", "matched_by", "matched_via", "reason",
        "request_hash", "processed_at", "refunded_amount", "created_at"), conversions)
    rows.write("refunds", ("id", "conversion_id", "external_id", "amount", "cumulative",
                           "created_at"), refunds)
    rows.write("rewards", (
        "id", "program_id", "customer_id", "conversion_id", "friend_id", "role", "rule",
        "policy_version_id", "amount", "reversed_amount", "currency", "status", "held_from",
        "explanation", "occurred_at", "available_at", "paid_amount", "paid_at", "created_at"),
        rewards)
    rows.write("adjustments", ("id", "reward_id", "customer_id", "refund_id", "kind", "amount",
                               "currency", "status", "explanation", "created_at"), adjustments)


# --- Databases ---------------------------------------------------------------------------


class Database:
    """A fresh database for one plan: a temporary SQLite file or a scratch PostgreSQL one."""

    def __init__(self, server_url: str | None, plan: Plan, keep: bool):
        from sqlalchemy.engine import make_url

        from config import database_url

        self.keep = keep
        self.directory = None
        if server_url is None:
            self.backend = "sqlite"
            self.directory = tempfile.mkdtemp(prefix="bench-dashboard-")
            self.path = os.path.join(self.directory, f"dashboard-{plan.label}.db")
            self.url = f"sqlite:///{self.path}"
            return
        self.backend = "postgresql"
        self.name = f"bench_dashboard_{plan.label}"
        if self.name in RESERVED_DATABASES:
            raise SystemExit(f"refusing to use the database {self.name}")
        server = make_url(database_url(server_url))
        self.admin_url = server.set(drivername="postgresql",
                                    database=server.database or "postgres")
        self.url = server.set(database=self.name).render_as_string(hide_password=False)
        self.raw_url = server.set(drivername="postgresql", database=self.name) \
            .render_as_string(hide_password=False)
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, statement: str) -> None:
        import psycopg

        url = self.admin_url.render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(statement)

    def connect(self):
        """A raw driver connection for the bulk load, apart from the app's pool."""
        if self.backend == "sqlite":
            import sqlite3

            connection = sqlite3.connect(self.path)
            connection.execute("PRAGMA synchronous=OFF")  # this connection only
            return connection
        import psycopg

        return psycopg.connect(self.raw_url)

    def where(self) -> str:
        return self.path if self.backend == "sqlite" else self.url

    def drop(self) -> None:
        if self.keep:
            print(f"  kept: {self.where()}")
            return
        if self.backend == "sqlite":
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def after_load(database: Database, tables: list[str]) -> None:
    """PostgreSQL: move the id sequences past the loaded ids and ANALYZE, as autovacuum
    would shortly after a load this size."""
    if database.backend != "postgresql":
        return
    with database.connect() as connection:
        for table in tables:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE")


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
        self.database = Database(args.database_url, plan, args.keep)
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
        with contextlib.closing(database.connect()) as connection:
            rows = Rows(database.backend, connection)
            load_data(rows, plan, bench.programs, args.seed, utcnow())
        after_load(database, list(rows.counts))
        load_seconds = time.perf_counter() - began
        step(f"loaded in {load_seconds:.1f}s: "
             + ", ".join(f"{n:,} {table}" for table, n in rows.counts.items()))

        began = time.perf_counter()
        with app.app_context():
            days = rebuild([p.id for p in bench.programs])
            db.session.remove()
        rebuild_seconds = time.perf_counter() - began
        step(f"rebuild-rollups: {days:,} program days in {rebuild_seconds:.1f}s")
        after_load(database, [])
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
