"""Benchmark the pure reward-policy evaluation.

    .venv/bin/python bench/policy.py [--evaluations N] [--seed S]

Builds the example policy from API.md ("Policy documents"), generates N random
(purchase, history) pairs up front (mostly qualifying purchases, some repeats, other
currencies, small purchases, referrers near their limits), then times `evaluate` over
them on one core and prints evaluations per second against the goal (>= 20,000/s).
Exits 0 after measuring, 1 when the goal was missed.

Each measurement is a function returning a `Measurement`; `main()` runs them in turn.
`measure_replay()` times `rewards.policies.replay.simulate` replaying a draft over
100,000 stored purchases of the last 30 days (goal: under 10 seconds), in a temporary
SQLite database it fills first with bulk inserts through the models' tables
(bench/table_rows.py): a program, 2,000 referrers, 30,000 referred friends, older
purchases and their rewards, some refunds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from table_rows import TableRows  # noqa: E402 - bench/table_rows.py

from rewards.policies import History, Policy, Purchase, evaluate, parse_policy  # noqa: E402

GOAL = 20_000  # evaluations per second, one core
REPLAY_SECONDS = 10.0  # 100,000 purchases replayed in under this

EXAMPLE_DOCUMENT = {
    "currency": "usd",
    "hold_days": 30,
    "min_purchase": 2000,
    "purchases": "first",
    "referrer": {"percent_bps": 1000, "cap": 5000},
    "tiers": [{"from": 3, "referrer": {"percent_bps": 1500, "cap": 8000}}],
    "milestones": [{"at": 5, "bonus": 5000}],
    "friend": {"fixed": 500},
    "limits": {"month": {"count": 10, "amount": 50000}, "lifetime": {"count": 100}},
}


@dataclass
class Measurement:
    name: str
    count: int  # operations timed
    seconds: float
    goal: float  # operations per second wanted
    detail: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")

    @property
    def met(self) -> bool:
        return self.rate >= self.goal


def example_policy() -> Policy:
    return parse_policy(EXAMPLE_DOCUMENT, currency="usd")


def generate_cases(count: int, seed: int) -> list[tuple[Purchase, History]]:
    """Realistic inputs: referrers with 0-120 rewarded friends, mostly first purchases."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    friend_lists = [tuple(range(1000 * n, 1000 * n + n)) for n in range(121)]
    cases = []
    for _ in range(count):
        friends = friend_lists[min(int(rng.expovariate(1 / 8)), 120)]
        signed_up = start + timedelta(seconds=rng.randrange(365 * 86400))
        occurred = signed_up + timedelta(seconds=rng.randrange(90 * 86400))
        repeat = friends and rng.random() < 0.15
        prior = rng.choice((1, 2, 5)) if rng.random() < 0.2 else 0
        purchase = Purchase(
            amount=rng.choice((1500, 2500, 4999, 12000, 25000, 60000, rng.randrange(1, 200_000))),
            currency="usd" if rng.random() < 0.95 else "eur",
            occurred_at=occurred,
            friend_id=rng.choice(friends) if repeat else 10**9 + rng.randrange(10**6),
            friend_signed_up_at=signed_up,
            friend_prior_purchases=prior,
            friend_rewarded_before=bool(prior) and rng.random() < 0.8,
        )
        month_count = rng.randrange(0, 11)
        history = History(
            rewarded_friends=friends,
            month_count=month_count,
            month_amount=min(50_000, month_count * rng.randrange(500, 6000)),
            lifetime_count=min(100, len(friends) + month_count),
            lifetime_amount=len(friends) * 3000,
        )
        cases.append((purchase, history))
    return cases


def measure_evaluations(count: int = 200_000, seed: int = 1) -> Measurement:
    """Evaluations per second of the API.md example policy over `count` random cases."""
    policy = example_policy()
    cases = generate_cases(count, seed)
    evaluate(policy, *cases[0])  # compile the policy outside the timing, as a warm process has
    lines = 0
    began = time.perf_counter()
    for purchase, history in cases:
        lines += len(evaluate(policy, purchase, history).decisions)
    seconds = time.perf_counter() - began
    return Measurement("policy evaluations", count, seconds, GOAL,
                       f"{lines} reward lines decided")


def _fill_database(rows: TableRows, purchases: int, referrers: int, friends: int,
                   seed: int) -> dict:
    """Bulk-insert a program with its customers, referrals, purchases and rewards, through
    the models' tables."""
    from rewards.extensions import db
    from rewards.models import Conversion, Customer, Program, Referral, Refund, Reward, utcnow
    from rewards.policies.versions import publish

    rng = random.Random(seed)
    now = utcnow()
    window = timedelta(days=30)

    def step(text: str) -> None:
        print(f"  loading: {text}", flush=True)

    step("program")
    rows.write(Program, [{"id": 1, "slug": "bench", "name": "Bench", "currency": "usd",
                          "is_default": True, "created_at": now - timedelta(days=400)}])
    version = publish(db.session.get(Program, 1), EXAMPLE_DOCUMENT)
    version_id = version.id

    step(f"{referrers:,} referrers and {friends:,} friends")
    customers = [{"id": n, "program_id": 1, "external_id": f"c-{n}", "email": f"c{n}@example.com",
                  "name": f"Customer {n}", "created_at": now - timedelta(days=200)}
                 for n in range(1, referrers + friends + 1)]
    rows.write(Customer, customers)

    step(f"{friends:,} referrals")
    first_friend = referrers + 1
    referral_rows, referrer_of, signed_up = [], {}, {}
    for n, friend in enumerate(range(first_friend, first_friend + friends), start=1):
        # Some referrers bring many friends, most a few.
        referrer = min(int(rng.expovariate(1 / (referrers / 4))), referrers - 1) + 1
        # A sixth of the friends came before the window and bought then too.
        days_ago = rng.uniform(35, 120) if n % 6 == 0 else rng.uniform(0, 30)
        created = now - timedelta(days=days_ago)
        referrer_of[friend], signed_up[friend] = referrer, created
        referral_rows.append({"id": n, "program_id": 1, "referrer_id": referrer,
                              "friend_id": friend, "matched_by": "code",
                              "reason": "bench", "created_at": created})
    rows.write(Referral, referral_rows)
    referral_of = {row["friend_id"]: row["id"] for row in referral_rows}

    step(f"{purchases:,} purchases in the last 30 days, plus older ones")
    friend_ids = list(referrer_of)
    conversions, first_purchase = [], {}
    next_id = 1

    def purchase(friend: int, occurred) -> None:
        nonlocal next_id
        conversions.append({
            "id": next_id, "program_id": 1, "source": "api", "order_id": f"o-{next_id}",
            "customer_id": friend, "referral_id": referral_of[friend],
            "referrer_id": referrer_of[friend],
            "amount": rng.choice((1500, 2500, 4999, 12000, 25000, 60000)),
            "currency": "usd" if rng.random() < 0.98 else "eur", "occurred_at": occurred,
            "matched_by": "code", "reason": "bench", "request_hash": "0" * 64,
            "processed_at": occurred, "refunded_amount": 0, "created_at": occurred})
        if friend not in first_purchase or occurred < first_purchase[friend][1]:
            first_purchase[friend] = (next_id, occurred)
        next_id += 1

    for friend in friend_ids:  # the older friends' purchases before the window
        if signed_up[friend] < now - window:
            purchase(friend, signed_up[friend] + timedelta(days=rng.uniform(0, 4)))
    older = len(conversions)
    for n in range(purchases):
        friend = friend_ids[n] if n < len(friend_ids) else rng.choice(friend_ids)
        start = max(signed_up[friend], now - window)
        purchase(friend, start + (now - start) * rng.random())
    refunds = []
    for row in rng.sample(conversions[older:], purchases // 100):
        refunded = row["amount"] // rng.choice((1, 2, 4))
        row["refunded_amount"] = refunded
        refunds.append({"conversion_id": row["id"], "external_id": f"re-{row['id']}",
                        "amount": refunded, "cumulative": refunded,
                        "created_at": row["occurred_at"] + timedelta(hours=6)})
    rows.write(Conversion, conversions)
    step(f"refunds of {len(refunds):,} purchases")
    rows.write(Refund, refunds)

    step("the published policy's rewards for first purchases")
    by_id = {row["id"]: row for row in conversions}
    rewards = []
    for friend, (conversion_id, occurred) in first_purchase.items():
        row = by_id[conversion_id]
        if row["currency"] != "usd" or row["amount"] < 2000:
            continue
        lines = (("referrer", referrer_of[friend], "referrer",
                  min(5000, (row["amount"] + 5) // 10)),
                 ("friend", friend, "friend", 500))
        for role, beneficiary, rule, amount in lines:
            rewards.append({
                "program_id": 1, "customer_id": beneficiary, "conversion_id": conversion_id,
                "friend_id": friend, "role": role, "rule": rule,
                "policy_version_id": version_id, "amount": amount, "reversed_amount": 0,
                "currency": "usd", "status": "pending" if occurred > now - window else "paid",
                "explanation": "bench", "occurred_at": occurred,
                "available_at": occurred + timedelta(days=30), "created_at": occurred})
    rows.write(Reward, rewards)
    step(f"done: {len(conversions):,} purchases, {len(rewards):,} reward lines")
    return {"program_id": 1}


def measure_replay(purchases: int = 100_000, seed: int = 1) -> Measurement:
    """Replay the API.md policy with richer rewards over `purchases` stored purchases."""
    from config import TestingConfig
    from rewards import create_app
    from rewards.extensions import db
    from rewards.models import Program
    from rewards.policies.replay import simulate

    draft = json.loads(json.dumps(EXAMPLE_DOCUMENT))
    draft["purchases"] = {"within_months": 3}
    draft["referrer"] = {"percent_bps": 1500, "cap": 7500}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as directory:
        app = create_app(TestingConfig,
                         {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory}/replay.db"})
        with app.app_context():
            db.create_all()
            print(f"replay: building a database with {purchases:,} purchases", flush=True)
            with db.engine.connect() as connection:
                made = _fill_database(TableRows(connection), purchases, referrers=2_000,
                                      friends=30_000, seed=seed)
            program = db.session.get(Program, made["program_id"])
            db.session.expire_all()
            began = time.perf_counter()
            result = simulate(program, draft, 30)
            seconds = time.perf_counter() - began
            db.engine.dispose()
    usd = next(c for c in result.currencies if c.currency == "usd")
    verdict = "meets" if seconds < REPLAY_SECONDS else "MISSES"
    detail = (f"{result.purchases:,} purchases replayed in {seconds:.2f}s ({verdict} the goal "
              f"of under {REPLAY_SECONDS:.0f}s); usd draft {usd.draft_cost:,} vs published "
              f"{usd.actual_cost:,} minor units, {usd.draft_rewards:,} vs "
              f"{usd.actual_rewards:,} rewards")
    return Measurement("draft replay", result.purchases, seconds,
                       result.purchases / REPLAY_SECONDS, detail)


def report(measurement: Measurement) -> None:
    verdict = "meets" if measurement.met else "MISSES"
    print(f"{measurement.name}: {measurement.count} in {measurement.seconds:.2f}s = "
          f"{measurement.rate:,.0f}/s ({verdict} the goal of >= {measurement.goal:,.0f}/s)")
    if measurement.detail:
        print(f"  {measurement.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replay-purchases", type=int, default=100_000,
                        help="purchases in the replay database; 0 skips the replay")
    args = parser.parse_args(argv)
    measurements = [measure_evaluations(args.evaluations, args.seed)]
    report(measurements[-1])
    if args.replay_purchases:
        measurements.append(measure_replay(args.replay_purchases, args.seed))
        report(measurements[-1])
    return 0 if all(m.met for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
