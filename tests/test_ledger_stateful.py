"""Random sequences of purchases, partial refunds, releases and payouts: afterwards
check-ledger passes and every balance equals a simple model kept beside the ledger."""

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sqlalchemy import select, update

from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.attribution.signups import attribute_signup
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.ledger.check import check_ledger
from rewards.ledger.refunds import record_refund
from rewards.models import Balance, Conversion, Program, Reward, utcnow
from rewards.people.customers import find_or_add_customer
from rewards.people.programs import create_program
from rewards.policies.versions import publish
from rewards.sweep import sweep

from .machines import AppMachine, machine_app, run_machine

POLICY = {"currency": "usd", "hold_days": 10, "purchases": "all",
          "referrer": {"percent_bps": 1250, "cap": 4000}, "friend": {"fixed": 500},
          "milestones": [{"at": 2, "bonus": 700}],
          "limits": {"month": {"amount": 9000}}}
FRIENDS = ("f-1", "f-2", "f-3")


def half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


@pytest.fixture(scope="module")
def ledger_app():
    return machine_app()


class LedgerMachine(AppMachine):
    @initialize()
    def setup(self):
        self.enter()
        program = create_program("p", name="P", currency="usd")
        publish(program, POLICY)
        self.program_id = program.id
        referrers = [find_or_add_customer(program, f"r-{n}", f"r{n}@example.com")[0]
                     for n in (1, 2)]
        for index, external_id in enumerate(FRIENDS):
            friend, _ = find_or_add_customer(program, external_id, f"{external_id}@example.com")
            code = ledger_code(referrers[index % 2])
            attribute_signup(program, friend, source="api", referral_code=code)
        db.session.commit()
        self.orders: list[str] = []
        # The model: reward id -> [customer, amount, reversed, clawed, status]
        self.model: dict[int, list] = {}
        self.payouts = 0

    # --- actions ---------------------------------------------------------------

    @rule(friend=st.sampled_from(FRIENDS), amount=st.integers(100, 60000))
    def purchase(self, friend, amount):
        order_id = f"o-{len(self.orders) + 1}"
        data = NewConversion(order_id=order_id, amount=amount, currency="usd",
                             occurred_at=utcnow(), external_id=friend)
        record_conversion(db.session.get(Program, self.program_id), data, source="api",
                          digest=request_hash(vars(data)))
        self.orders.append(order_id)
        conversion = self._conversion(order_id)
        for reward in db.session.scalars(select(Reward).filter_by(conversion_id=conversion.id)):
            assert reward.amount > 0
            self.model[reward.id] = [reward.customer_id, reward.amount, 0, 0, reward.status]

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def refund(self, data):
        order_id = data.draw(st.sampled_from(self.orders))
        conversion = self._conversion(order_id)
        remaining = conversion.amount - conversion.refunded_amount
        if remaining == 0:
            return
        amount = data.draw(st.integers(1, remaining))
        cumulative, whole = conversion.refunded_amount + amount, conversion.amount
        record_refund(conversion, amount)
        for reward_id in self._reward_ids(self._conversion(order_id).id):
            line = self.model[reward_id]
            customer, total, reversed_, clawed, status = line
            if status in ("reversed", "rejected"):
                continue
            owed = half_up(Fraction(total * cumulative, whole)) - reversed_ - clawed
            if owed <= 0:
                continue
            if status == "paid":
                line[3] += owed
            else:
                line[2] += owed
                if line[2] == total:
                    line[4] = "reversed"

    @rule()
    def release(self):
        db.session.execute(update(Reward).where(Reward.status == "pending")
                           .values(available_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        sweep()
        for line in self.model.values():
            if line[4] == "pending":
                line[4] = "available"

    @rule(referrer=st.sampled_from(["r-1", "r-2", "f-1", "f-2", "f-3"]))
    def pay_out(self, referrer):
        from rewards.models import Customer

        customer = db.session.scalar(select(Customer).filter_by(external_id=referrer))
        self.payouts += 1
        for reward in db.session.scalars(select(Reward).filter_by(
                customer_id=customer.id, status="available")).all():
            assert ledger.reserve(reward, payout_id=self.payouts)
            assert ledger.settle(reward)
            self.model[reward.id][4] = "paid"
        db.session.commit()

    # --- checks ----------------------------------------------------------------

    @invariant()
    def ledger_is_true(self):
        if not hasattr(self, "model"):
            return
        assert check_ledger() == []
        expected: dict[int, dict[str, int]] = {}
        for customer, total, reversed_, clawed, status in self.model.values():
            row = expected.setdefault(customer, dict.fromkeys(
                ("pending", "on_hold", "available", "in_payout", "paid", "owed"), 0))
            if status in row:
                row[status] += total - reversed_
            row["owed"] += clawed
        stored = {b.customer_id: b.as_dict() for b in db.session.scalars(select(Balance))}
        for customer, row in expected.items():
            assert stored.get(customer, dict.fromkeys(row, 0)) == row, customer
        statuses = {r.id: r.status for r in db.session.scalars(select(Reward))}
        assert statuses == {rid: line[4] for rid, line in self.model.items()}

    def _conversion(self, order_id) -> Conversion:
        db.session.expire_all()
        return db.session.scalar(select(Conversion).filter_by(order_id=order_id))

    def _reward_ids(self, conversion_id):
        return list(db.session.scalars(select(Reward.id).filter_by(conversion_id=conversion_id)
                                       .order_by(Reward.id)))


def ledger_code(customer):
    from rewards.people.codes import primary_code

    return primary_code(customer).code


def test_ledger_state_machine(ledger_app):
    run_machine(LedgerMachine, ledger_app, cases_per_100=25, steps=20)
