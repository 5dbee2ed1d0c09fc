"""Random streams of clicks, signups, purchases, refunds and reward changes, recorded
through the services: after each step the refreshed daily rollups equal a recount of the
raw rows done here in plain Python, and a full rebuild gives the same rows again."""

from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sqlalchemy import select, update

from rewards.analytics import rollups, sketches, tallies
from rewards.attribution.clicks import insert_clicks
from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.attribution.signups import attribute_signup
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.ledger.refunds import record_refund
from rewards.models import (
    Adjustment,
    Click,
    Conversion,
    Program,
    Referral,
    Reward,
    Signup,
    utcnow,
)
from rewards.models.rollups import (
    DailyChannel,
    DailyHost,
    DailyReferrerTally,
    DailyRewards,
    DailySales,
    DailyTraffic,
    RollupMark,
)
from rewards.people.codes import primary_code
from rewards.people.customers import find_or_add_customer
from rewards.people.programs import create_program
from rewards.policies.versions import publish
from rewards.sweep import sweep

from .machines import AppMachine, machine_app, run_machine

POLICY = {"currency": "{currency}", "hold_days": 5, "purchases": "all",
          "referrer": {"percent_bps": 1000, "cap": 3000}, "friend": {"fixed": 300}}
PROGRAMS = (("shop", "usd"), ("boutique", "eur"))
HOSTS = (None, "t.co", "mail.google.com")
CHANNELS = (None, "email", "x")


def policy(currency: str) -> dict:
    return {**POLICY, "currency": currency}


# --- The recount, in plain Python ---------------------------------------------------------

def expected_rollups() -> dict[str, dict]:
    clicks = db.session.scalars(select(Click)).all()
    conversions = db.session.scalars(select(Conversion)).all()
    day = rollups.day_of
    traffic: dict = defaultdict(lambda: {"clicks": 0, "ids": set(), "signups": 0,
                                         "referred_signups": 0, "clicked": 0, "converted": 0})
    buyers = {c.customer_id for c in conversions if c.referrer_id is not None}
    referrals = {r.id: r for r in db.session.scalars(select(Referral))}
    hosts: dict = defaultdict(int)
    channels: dict = defaultdict(int)
    for click in clicks:
        row = traffic[(click.program_id, day(click.created_at))]
        row["clicks"] += 1
        row["ids"].add(click.visitor_id)
        hosts[(click.program_id, day(click.created_at), click.referrer_host or "")] += 1
        channels[(click.program_id, day(click.created_at), click.channel or "")] += 1
    for signup in db.session.scalars(select(Signup)):
        row = traffic[(signup.program_id, day(signup.created_at))]
        row["signups"] += 1
        row["referred_signups"] += signup.referral_id is not None
        if signup.referral_id is not None:
            row["clicked"] += referrals[signup.referral_id].click_id is not None
            row["converted"] += signup.customer_id in buyers
    referred = [c for c in conversions if c.referrer_id is not None]
    first: dict[int, Conversion] = {}
    for c in sorted(referred, key=lambda c: (c.occurred_at, c.id)):
        first.setdefault(c.customer_id, c)
    sales: dict = defaultdict(lambda: [0, 0, 0, 0])
    referrers: dict = defaultdict(lambda: [0, 0])
    for c in referred:
        row = sales[(c.program_id, day(c.occurred_at), c.currency)]
        row[0] += 1
        row[1] += first[c.customer_id].id == c.id
        row[2] += c.amount
        row[3] += c.refunded_amount
        by = referrers[(c.program_id, day(c.occurred_at), c.referrer_id, c.currency)]
        by[0] += 1
        by[1] += c.amount - c.refunded_amount
    clawed: dict[int, int] = defaultdict(int)
    for line in db.session.scalars(select(Adjustment).filter_by(kind="clawback")):
        clawed[line.reward_id] -= line.amount
    rewards: dict = defaultdict(lambda: [0, 0, 0, 0])
    for r in db.session.scalars(select(Reward)):
        row = rewards[(r.program_id, day(r.occurred_at), r.currency, r.status)]
        row[0] += 1
        row[1] += r.amount
        row[2] += r.reversed_amount
        row[3] += clawed[r.id]
    return {
        "traffic": {k: (v["clicks"], sketches.sketch(sorted(v["ids"])), v["signups"],
                        v["referred_signups"], v["clicked"], v["converted"])
                    for k, v in traffic.items()},
        "sales": {k: tuple(v) for k, v in sales.items()},
        "referrers": {k: tuple(v) for k, v in referrers.items()},
        "rewards": {k: tuple(v) for k, v in rewards.items()},
        "hosts": dict(hosts),
        "channels": dict(channels),
    }


def stored_rollups() -> dict[str, dict]:
    db.session.expire_all()
    rows = {}
    rows["traffic"] = {(r.program_id, r.day): (r.clicks, bytes(r.visitors), r.signups,
                                                r.referred_signups, r.clicked_signups,
                                                r.converted_signups)
                       for r in db.session.scalars(select(DailyTraffic))}
    rows["sales"] = {(r.program_id, r.day, r.currency): (r.purchases, r.new_customers,
                                                          r.revenue, r.refunded)
                     for r in db.session.scalars(select(DailySales))}
    rows["referrers"] = {(r.program_id, r.day, referrer, r.currency): (purchases, revenue)
                         for r in db.session.scalars(select(DailyReferrerTally))
                         for referrer, purchases, revenue in tallies.unpack(r.tally).T.tolist()}
    rows["rewards"] = {(r.program_id, r.day, r.currency, r.status): (r.rewards, r.amount,
                                                                      r.reversed,
                                                                      r.clawed_back)
                       for r in db.session.scalars(select(DailyRewards))}
    rows["hosts"] = {(r.program_id, r.day, r.host): r.clicks
                     for r in db.session.scalars(select(DailyHost))}
    rows["channels"] = {(r.program_id, r.day, r.channel): r.clicks
                        for r in db.session.scalars(select(DailyChannel))}
    return rows


@pytest.fixture(scope="module")
def rollup_app():
    return machine_app()


class RollupMachine(AppMachine):
    @initialize()
    def setup(self):
        self.enter()
        self.now = utcnow()
        self.programs: list[int] = []
        self.codes: dict[int, list[tuple[int, int, str]]] = {}
        for slug, currency in PROGRAMS:
            program = create_program(slug, name=slug.title(), currency=currency)
            publish(program, policy(currency))
            referrers = [find_or_add_customer(program, f"{slug}-r{n}",
                                              f"r{n}@{slug}.example")[0] for n in (1, 2)]
            db.session.commit()
            self.programs.append(program.id)
            self.codes[program.id] = [(r.id, primary_code(r).id, primary_code(r).code)
                                      for r in referrers]
        self.friends: list[tuple[int, str]] = []  # (program id, external id)
        self.orders: list[str] = []
        self.clicks = 0

    def _at(self, days_ago: int, hours: int):
        return self.now - timedelta(days=days_ago, hours=hours)

    # --- actions ---------------------------------------------------------------

    @rule(program=st.integers(0, 1), referrer=st.integers(0, 1), visitor=st.integers(1, 6),
          days_ago=st.integers(0, 4), hours=st.integers(0, 23),
          host=st.sampled_from(HOSTS), channel=st.sampled_from(CHANNELS))
    def click(self, program, referrer, visitor, days_ago, hours, host, channel):
        program_id = self.programs[program]
        referrer_id, code_id, _ = self.codes[program_id][referrer]
        self.clicks += 1
        insert_clicks([{"uid": f"c{self.clicks}", "program_id": program_id, "code_id": code_id,
                        "referrer_id": referrer_id, "visitor_id": f"v{visitor}",
                        "ip_hash": None, "user_agent": None, "referrer_host": host,
                        "channel": channel, "created_at": self._at(days_ago, hours)}])
        db.session.commit()

    @rule(program=st.integers(0, 1), referrer=st.sampled_from([0, 1, None]),
          visitor=st.sampled_from([None, 1, 2]), days_ago=st.integers(0, 4),
          hours=st.integers(0, 23))
    def signup(self, program, referrer, visitor, days_ago, hours):
        """By code, or by a visitor id that earlier clicks may tie to a referrer."""
        program_id = self.programs[program]
        program_row = db.session.get(Program, program_id)
        external_id = f"f{len(self.friends) + 1}"
        friend, _ = find_or_add_customer(program_row, external_id, f"{external_id}@x.example")
        code = self.codes[program_id][referrer][2] if referrer is not None else None
        attribute_signup(program_row, friend, source="api", referral_code=code,
                         visitor_id=f"v{visitor}" if visitor else None,
                         at=self._at(days_ago, hours))
        db.session.commit()
        self.friends.append((program_id, external_id))

    @precondition(lambda self: self.friends)
    @rule(data=st.data(), amount=st.integers(100, 40000), days_ago=st.integers(0, 4),
          hours=st.integers(0, 23))
    def purchase(self, data, amount, days_ago, hours):
        program_id, external_id = data.draw(st.sampled_from(self.friends))
        program = db.session.get(Program, program_id)
        order_id = f"o{len(self.orders) + 1}"
        new = NewConversion(order_id=order_id, amount=amount, currency=program.currency,
                            occurred_at=self._at(days_ago, hours), external_id=external_id)
        record_conversion(program, new, source="api", digest=request_hash(vars(new)))
        self.orders.append(order_id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def refund(self, data):
        conversion = self._conversion(data.draw(st.sampled_from(self.orders)))
        remaining = conversion.amount - conversion.refunded_amount
        if remaining:
            record_refund(conversion, data.draw(st.integers(1, remaining)))

    @rule()
    def release(self):
        db.session.execute(update(Reward).where(Reward.status == "pending")
                           .values(available_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        sweep()

    @rule(data=st.data(), to=st.sampled_from(["on_hold", "rejected", "paid"]))
    def change_reward(self, data, to):
        rewards = db.session.scalars(select(Reward).where(
            Reward.status.in_(("pending", "available", "on_hold"))).order_by(Reward.id)).all()
        if not rewards:
            return
        reward = data.draw(st.sampled_from(rewards))
        if to == "on_hold" and reward.status != "on_hold":
            assert ledger.move(reward, "on_hold", held_from=reward.status)
        elif to == "rejected":
            assert ledger.move(reward, "rejected")
        elif to == "paid" and reward.status == "available":
            assert ledger.reserve(reward, payout_id=1)
            assert ledger.settle(reward)
        db.session.commit()

    # --- checks ----------------------------------------------------------------

    @invariant()
    def rollups_equal_a_recount(self):
        if not hasattr(self, "programs"):
            return
        rollups.refresh()
        expected = expected_rollups()
        assert stored_rollups() == expected
        assert db.session.scalar(select(RollupMark.id).limit(1)) is None
        assert rollups.refresh() == 0

    def check_rebuild(self):
        rollups.rebuild(self.programs)
        assert stored_rollups() == expected_rollups()

    def _conversion(self, order_id) -> Conversion:
        db.session.expire_all()
        return db.session.scalar(select(Conversion).filter_by(order_id=order_id))


class RebuildingMachine(RollupMachine):
    """The same streams, checked against a full rebuild instead of the marks."""

    @invariant()
    def rollups_equal_a_recount(self):
        if hasattr(self, "programs"):
            self.check_rebuild()


@pytest.mark.parametrize("machine", [RollupMachine, RebuildingMachine],
                         ids=["refresh", "rebuild"])
def test_rollups_equal_a_recount(rollup_app, machine):
    run_machine(machine, rollup_app, cases_per_100=30, steps=25)
