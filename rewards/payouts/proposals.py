"""Proposing payouts: on each program's schedule (or when a coordinator asks), a customer's
available rewards in one currency, less the clawbacks they owe, become one payout awaiting
approval. One live payout per customer and currency is a partial unique index."""

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from rewards.audit import log as audit
from rewards.errors import Conflict
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.models import Account, Adjustment, Balance, Customer, Payout, Program, Reward, utcnow
from rewards.payouts.transitions import AUDITED


def due(program: Program, now: datetime) -> bool:
    """Whether the program's schedule calls for proposals now (on demand: never by itself)."""
    last = program.last_proposed_at
    if program.payout_schedule == "weekly":
        return last is None or now - last >= timedelta(days=7)
    if program.payout_schedule == "monthly":
        return last is None or (last.year, last.month) != (now.year, now.month)
    return False


def propose_due(now: datetime | None = None) -> int:
    """Propose payouts for every program whose schedule is due. Returns how many."""
    now = now or utcnow()
    made = 0
    for program in db.session.scalars(select(Program).order_by(Program.id)).all():
        if due(program, now):
            made += len(propose(program, now=now))
    return made


def propose(program: Program, *, now: datetime | None = None,
            account: Account | None = None) -> list[Payout]:
    """One payout per customer and currency whose available rewards, less clawbacks owed,
    reach the program's minimum. Safe to run concurrently: the unique live-payout index
    and the rewards' compare-and-set let one proposal through."""
    now = now or utcnow()
    claimed = db.session.execute(
        update(Program).where(Program.id == program.id,
                              Program.last_proposed_at.is_not_distinct_from(
                                  program.last_proposed_at))
        .values(last_proposed_at=now).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return []  # another sweep is proposing for this program right now
    candidates = db.session.execute(
        select(Balance.customer_id, Balance.currency)
        .join(Customer, Customer.id == Balance.customer_id)
        .where(Customer.program_id == program.id, Balance.available > 0)
        .order_by(Balance.customer_id, Balance.currency)
    ).all()
    made = []
    for customer_id, currency in candidates:
        payout = _propose_one(program, customer_id, currency, account)
        if payout is not None:
            made.append(payout)
    return made


def _propose_one(program, customer_id, currency, account) -> Payout | None:
    try:
        ledger.lock_balance(customer_id, currency)
        rewards = db.session.scalars(
            select(Reward).where(Reward.customer_id == customer_id,
                                 Reward.currency == currency, Reward.status == "available",
                                 Reward.program_id == program.id)
            .order_by(Reward.id)).all()
        owed = db.session.scalars(
            select(Adjustment).where(Adjustment.customer_id == customer_id,
                                     Adjustment.currency == currency,
                                     Adjustment.kind == "clawback", Adjustment.status == "owed")
            .order_by(Adjustment.id)).all()
        gross = sum(r.net_amount for r in rewards)
        netted = sum(-a.amount for a in owed)
        amount = gross - netted
        if amount <= 0 or amount < program.payout_minimum:
            db.session.rollback()
            return None
        customer = db.session.get(Customer, customer_id)
        threshold = program.second_approval_above
        payout = Payout(program_id=program.id, customer_id=customer_id, currency=currency,
                        gross=gross, netted=netted, amount=amount,
                        method=customer.payout_method or "manual",
                        needs_two_approvals=threshold is not None and amount > threshold)
        db.session.add(payout)
        db.session.flush()
        payout.idempotency_key = f"payout-{payout.id}"
        for reward in rewards:
            if not ledger.reserve(reward, payout.id):
                raise Conflict("A reward changed while the payout was proposed.")
        _net_clawbacks(owed, payout.id)
        audit.record(account, "propose_payout", f"payout:{payout.id}",
                     after=audit.snapshot(payout, *AUDITED))
        db.session.commit()
        return payout
    except (IntegrityError, Conflict):
        db.session.rollback()  # a live payout exists, or a racing proposal won
        return None


def _net_clawbacks(owed: list[Adjustment], payout_id: int) -> None:
    for line in owed:
        changed = db.session.execute(
            update(Adjustment).where(Adjustment.id == line.id, Adjustment.status == "owed")
            .values(status="netted", payout_id=payout_id)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise Conflict("A clawback changed while the payout was proposed.")
        ledger.shift_balance(line.customer_id, line.currency, owed=line.amount)
