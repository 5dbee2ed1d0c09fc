"""Benchmark the pure reward-policy evaluation.

    .venv/bin/python bench/policy.py [--evaluations N] [--seed S]

Builds the example policy from API.md ("Policy documents"), generates N random
(purchase, history) pairs up front (mostly qualifying purchases, some repeats, other
currencies, small purchases, referrers near their limits), then times `evaluate` over
them on one core and prints evaluations per second against the goal (>= 20,000/s).
Exits 0 after measuring, 1 when the goal was missed.

Each measurement is a function returning a `Measurement`; `main()` runs them in turn, so
another one (e.g. replaying stored history under a draft policy) can be added beside
`measure_evaluations()`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewards.policies import History, Policy, Purchase, evaluate, parse_policy  # noqa: E402

GOAL = 20_000  # evaluations per second, one core

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
    args = parser.parse_args(argv)
    measurements = [measure_evaluations(args.evaluations, args.seed)]
    for measurement in measurements:
        report(measurement)
    return 0 if all(m.met for m in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
