"""A year of synthetic referral data for bench/dashboard.py, written through the models.

Per 1,000,000 clicks (30% from returning visitors, from 15 referring hosts and 6 share
channels): 100,000 signups (60% referred, with their referrals), 20,000 purchases (85%
referred; 4% refunded, some partly) and the rewards of referred first purchases in every
status, with reversals and clawbacks, over the last 365 days with weekly variation,
growth over the year and a few campaign spikes. 2,000 referrers at every scale, with
Zipf-like popularity, 90% in a USD program and 10% in a EUR one. Signups and purchases
scale with the clicks, so ten times the clicks is ten times every raw table.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policy import EXAMPLE_DOCUMENT  # bench/policy.py: the API.md example policy
from table_rows import TableRows

from rewards.models import (
    Adjustment,
    Click,
    Conversion,
    Customer,
    Referral,
    ReferralCode,
    Refund,
    Reward,
    Signup,
)

SIGNUPS_PER_CLICK = 0.1  # 100,000 signups per 1,000,000 clicks
PURCHASES_PER_CLICK = 0.02  # 20,000 purchases per 1,000,000 clicks
REFERRERS = 2_000
CLICK_CHUNK = 50_000  # clicks generated, then written, at a time

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


def step(text: str) -> None:
    print(f"  {text}", flush=True)


def visitor_id(rng: random.Random) -> str:
    """A 22-character id like shortuuid.uuid(), from the seeded generator."""
    number = rng.getrandbits(128)
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 57)
        chars.append(VISITOR_ALPHABET[digit])
    return "".join(chars)


def hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def cumulative(weights) -> list[float]:
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
        self.cumulative = cumulative(weights)

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


def load_data(rows: TableRows, plan: Plan, programs: list[ProgramSeed], seed: int,
              now: datetime) -> None:
    """Bulk-insert customers, codes, clicks, signups, referrals, purchases, refunds,
    rewards and adjustments for `plan` over the year before `now`."""
    year = SyntheticYear(rows, plan, programs, random.Random(seed), now)
    popularity, weights = year.referrers()
    followed = year.clicks(popularity, weights)
    friends = year.signups(followed)
    year.purchases(friends)


class SyntheticYear:
    """The loader's steps, in the order they draw from one seeded generator: the same
    seed and `now` give the same rows."""

    def __init__(self, rows: TableRows, plan: Plan, programs: list[ProgramSeed],
                 rng: random.Random, now: datetime):
        self.rows, self.plan, self.programs, self.rng, self.now = rows, plan, programs, rng, now
        self.cal = Calendar(now, rng)
        self.reward_rows: list[dict] = []
        self.adjustment_rows: list[dict] = []

    def program_of(self, referrer: int) -> ProgramSeed:
        programs = self.programs
        return programs[1] if len(programs) > 1 and referrer % 10 == 0 else programs[0]

    def referrers(self) -> tuple[list[int], list[float]]:
        """Referrers and their codes (customer and code ids 1..R); returns the referrers
        by popularity rank and the rank's cumulative weight."""
        rng, now = self.rng, self.now
        referrer_ids = list(range(1, self.plan.referrers + 1))
        popularity = list(referrer_ids)
        rng.shuffle(popularity)  # popularity rank -> referrer
        weights = cumulative(1 / (rank + 1) ** 0.9 for rank in range(self.plan.referrers))
        customers, codes, taken = [], [], set()
        for referrer in referrer_ids:
            program = self.program_of(referrer)
            created = now - timedelta(days=rng.uniform(400, 800))
            customers.append({"id": referrer, "program_id": program.id,
                              "external_id": f"ref-{referrer}",
                              "email": f"referrer{referrer}@bench.example",
                              "name": f"Referrer {referrer}", "created_at": created})
            code = "".join(rng.choice(CODE_ALPHABET) for _ in range(8))
            while code in taken:
                code = "".join(rng.choice(CODE_ALPHABET) for _ in range(8))
            taken.add(code)
            # A primary, active, non-vanity code: the model's defaults.
            codes.append({"id": referrer, "program_id": program.id, "customer_id": referrer,
                          "code": code, "code_key": code.lower(), "created_at": created})
        step("inserting referrers and their codes")
        self.rows.write(Customer, customers)
        self.rows.write(ReferralCode, codes)
        return popularity, weights

    def clicks(self, popularity: list[int], weights: list[float]) -> list[tuple]:
        """Clicks in time order; returns (click id, seconds, visitor, referrer) of the
        clicks that referred signups will follow."""
        rng, cal, plan = self.rng, self.cal, self.plan
        step(f"generating and inserting {plan.clicks:,} clicks")
        moments = sorted(cal.seconds(rng, plan.clicks))
        referred_signups = round(plan.signups * 0.6)
        remembered = set(rng.sample(range(plan.clicks), min(referred_signups, plan.clicks)))
        chosen = rng.choices(popularity, cum_weights=weights, k=plan.clicks)
        hosts = rng.choices([h for h, _ in HOSTS], weights=[w for _, w in HOSTS], k=plan.clicks)
        channels = rng.choices([c for c, _ in CHANNELS], weights=[w for _, w in CHANNELS],
                               k=plan.clicks)
        recent: list[tuple[str, str, str, int]] = []  # (visitor, ip hash, agent, referrer)
        ring = 20_000
        batch, followed = [], []
        for index, seconds in enumerate(moments):
            if recent and rng.random() < 0.3:  # a returning visitor, mostly to the same link
                visitor, ip_hash, agent, referrer = recent[rng.randrange(len(recent))]
                if rng.random() >= 0.85:
                    referrer = chosen[index]
            else:
                visitor, ip_hash, agent = visitor_id(rng), hex_id(rng), rng.choice(AGENTS)
                referrer = chosen[index]
                if len(recent) < ring:
                    recent.append((visitor, ip_hash, agent, referrer))
                else:
                    recent[index % ring] = (visitor, ip_hash, agent, referrer)
            click_id = index + 1
            batch.append({"id": click_id, "uid": hex_id(rng),
                          "program_id": self.program_of(referrer).id, "code_id": referrer,
                          "referrer_id": referrer, "visitor_id": visitor, "ip_hash": ip_hash,
                          "user_agent": agent, "referrer_host": hosts[index],
                          "channel": channels[index], "created_at": cal.moment(seconds)})
            if len(batch) == CLICK_CHUNK:
                self.rows.write(Click, batch)
                batch = []
            if index in remembered:
                followed.append((click_id, seconds, visitor, referrer))
        self.rows.write(Click, batch)
        return followed

    def signups(self, followed: list[tuple]) -> list[tuple]:
        """Friends and their signups: referred ones follow a click (by its visitor id, or
        the code typed in), the rest come on their own. Returns (customer id, program id,
        referral id or None, referrer or None, signed up seconds) of each friend."""
        rng, cal, plan, end = self.rng, self.cal, self.plan, self.cal.end
        step(f"generating {plan.signups:,} signups")
        pending = []  # (seconds, program, referrer or None, code, click id, visitor, matched_by)
        for click_id, seconds, visitor, referrer in followed:
            later = seconds + rng.expovariate(1 / 7200)  # a couple of hours after the click
            if later >= end:
                later = seconds + (end - seconds) * rng.random()
            by_visitor = rng.random() < 0.8
            pending.append((later, self.program_of(referrer).id, referrer, referrer,
                            click_id if by_visitor else None, visitor if by_visitor else None,
                            "visitor" if by_visitor else "code"))
        programs = self.programs
        for seconds in cal.seconds(rng, plan.signups - len(pending)):
            program = programs[1] if len(programs) > 1 and rng.random() < 0.1 else programs[0]
            visitor = visitor_id(rng) if rng.random() < 0.5 else None
            pending.append((seconds, program.id, None, None, None, visitor, None))
        pending.sort(key=lambda row: row[0])
        customers, referrals, signups, friends = [], [], [], []
        for index, (seconds, program_id, referrer, code_id, click_id, visitor, matched_by) in \
                enumerate(pending, start=1):
            customer_id = plan.referrers + index
            moment = cal.moment(seconds)
            customers.append({"id": customer_id, "program_id": program_id,
                              "external_id": f"cus-{customer_id}",
                              "email": f"friend{customer_id}@bench.example",
                              "name": f"Friend {customer_id}", "created_at": moment})
            referral_id = None
            if referrer is not None:
                referral_id = len(referrals) + 1
                reason = ("Referred: the visitor followed the referrer's link."
                          if matched_by == "visitor" else "Referred: the referral code was given.")
                referrals.append({"id": referral_id, "program_id": program_id,
                                  "referrer_id": referrer, "friend_id": customer_id,
                                  "code_id": code_id, "click_id": click_id,
                                  "matched_by": matched_by, "reason": reason,
                                  "created_at": moment})
            signups.append({"id": index, "program_id": program_id, "customer_id": customer_id,
                            "referral_id": referral_id, "visitor_id": visitor,
                            "source": "web" if rng.random() < 0.7 else "api",
                            "reason": "bench" if referral_id is None else reason,
                            "created_at": moment})
            friends.append((customer_id, program_id, referral_id, referrer, seconds))
        step("inserting friends, signups and referrals")
        self.rows.write(Customer, customers)
        self.rows.write(Referral, referrals)
        self.rows.write(Signup, signups)
        return friends

    def purchase_times(self, friends: list[tuple]) -> list[tuple]:
        """Referred friends' first purchases (a few days after signing up) and repeats, and
        some by customers nobody referred: (seconds, friend, first?) in time order."""
        rng, plan, end = self.rng, self.plan, self.cal.end
        referred = [f for f in friends if f[2] is not None]
        organic = [f for f in friends if f[2] is None]
        rng.shuffle(referred)
        rng.shuffle(organic)
        wanted_referred = round(plan.purchases * 0.85)
        wanted_first = round(wanted_referred * 0.75)
        bought, firsts = [], []
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
        return bought

    def purchases(self, friends: list[tuple]) -> None:
        """Purchases, their refunds (4%, some partial), and the rewards of referred first
        purchases with their reversals and clawbacks."""
        rng, now, end = self.rng, self.now, self.cal.end
        step(f"generating {self.plan.purchases:,} purchases, refunds and rewards")
        by_program = {p.id: p for p in self.programs}
        conversions, refunds = [], []
        for conversion_id, (seconds, friend, first) in \
                enumerate(self.purchase_times(friends), start=1):
            customer_id, program_id, referral_id, referrer, _ = friend
            occurred = self.cal.moment(seconds)
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
            refund = None
            if rng.random() < 0.04 and seconds < end - 3600:
                refunded = amount if rng.random() < 0.65 else amount // rng.choice((2, 4))
                refunded_at = min(now, occurred + timedelta(seconds=rng.uniform(3600, 20 * 86400)))
                refund = {"id": len(refunds) + 1, "conversion_id": conversion_id,
                          "external_id": f"re_{conversion_id}", "amount": refunded,
                          "cumulative": refunded, "created_at": refunded_at}
                refunds.append(refund)
            conversions.append({
                "id": conversion_id, "program_id": program_id,
                "source": "stripe" if stripe else "api",
                "order_id": f"{'cs' if stripe else 'ord'}_{conversion_id:08d}",
                "customer_id": customer_id, "referral_id": referral_id,
                "referrer_id": referrer if referral_id else None, "amount": amount,
                "currency": by_program[program_id].currency, "occurred_at": occurred,
                "matched_by": matched_by, "matched_via": matched_via, "reason": reason,
                "request_hash": f"{rng.getrandbits(256):064x}", "processed_at": occurred,
                "refunded_amount": refund["amount"] if refund else 0, "created_at": occurred})
            if first and amount >= EXAMPLE_DOCUMENT["min_purchase"]:
                self.rewards(conversions[-1], by_program[program_id], refund)
        step("inserting purchases, refunds, rewards and adjustments")
        self.rows.write(Conversion, conversions)
        self.rows.write(Refund, refunds)
        self.rows.write(Reward, self.reward_rows)
        self.rows.write(Adjustment, self.adjustment_rows)

    def rewards(self, conversion: dict, program: ProgramSeed, refund: dict | None) -> None:
        """The referrer's and the friend's reward for a first purchase, in a status drawn
        for its age, reversed or clawed back in proportion to a refund."""
        rng, now = self.rng, self.now
        amount, occurred = conversion["amount"], conversion["occurred_at"]
        refunded = refund["amount"] if refund else 0
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
        friend = conversion["customer_id"]
        for role, beneficiary, reward_amount in (("referrer", conversion["referrer_id"], share),
                                                  ("friend", friend, 500)):
            reward_id = len(self.reward_rows) + 1
            reward_status, reversed_amount, paid_amount, paid_at = status, 0, None, None
            taken = (reward_amount * refunded * 2 + amount) // (2 * amount) if refunded else 0
            if status == "paid":
                paid_amount = reward_amount
                paid_at = min(now, available_at + timedelta(days=rng.uniform(0, 10)))
                if taken:
                    self.adjust(reward_id, beneficiary, refund, "clawback", -taken,
                                program.currency,
                                "owed" if rng.random() < 0.6 else "netted",
                                "Refund after payment: owed back.")
            elif taken:
                reversed_amount = taken
                if taken == reward_amount:
                    reward_status = "reversed"
                self.adjust(reward_id, beneficiary, refund, "reversal", -taken,
                            program.currency, "applied", "Refund before payment: reversed.")
            explanation = (f"10% of the purchase, capped at 50.00: {reward_amount / 100:.2f}"
                           if role == "referrer" else "The friend's reward: 5.00")
            self.reward_rows.append({
                "id": reward_id, "program_id": program.id, "customer_id": beneficiary,
                "conversion_id": conversion["id"], "friend_id": friend, "role": role,
                "rule": role, "policy_version_id": program.policy_version_id,
                "amount": reward_amount, "reversed_amount": reversed_amount,
                "currency": program.currency, "status": reward_status,
                "held_from": ("pending" if held else "available")
                if reward_status == "on_hold" else None,
                "explanation": explanation, "occurred_at": occurred,
                "available_at": available_at, "paid_amount": paid_amount, "paid_at": paid_at,
                "created_at": occurred})

    def adjust(self, reward_id: int, customer_id: int, refund: dict, kind: str, amount: int,
               currency: str, status: str, explanation: str) -> None:
        self.adjustment_rows.append({
            "id": len(self.adjustment_rows) + 1, "reward_id": reward_id,
            "customer_id": customer_id, "refund_id": refund["id"], "kind": kind,
            "amount": amount, "currency": currency, "status": status,
            "explanation": explanation, "created_at": refund["created_at"]})
