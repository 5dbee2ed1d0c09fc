"""Payouts: proposed on schedule, approved by coordinators, sent once.

Every state change is a compare-and-set; one live payout per customer and currency is a
partial unique index; the Stripe idempotency key (`payout-<id>`) is stored before Stripe
is called, and a payout whose sender died is resumed by finding what Stripe already made.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from rewards import background
from rewards.audit import log as audit
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.models import (
    REJECTABLE_PAYOUT,
    RETRYABLE_PAYOUT,
    Account,
    Adjustment,
    Balance,
    Customer,
    Payout,
    PayoutApproval,
    Program,
    Reward,
    utcnow,
)
from rewards.stripe import gateway as stripe_gateway

# A payout still processing this long after its send began is taken to be abandoned.
STALE_SEND = timedelta(minutes=10)
# An approved payout that could not be sent (no Redis, low platform balance) is retried.
RETRY_AFTER = timedelta(minutes=5)
AUDITED = ("status", "amount", "currency", "method", "reference", "failure_reason",
           "rejection_reason", "stripe_object_id")


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


def _get(payout_id: int) -> Payout:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFound(f"No payout #{payout_id}.")
    return payout


def _cas(payout: Payout, to: str, from_: tuple[str, ...], **values) -> bool:
    changed = db.session.execute(
        update(Payout).where(Payout.id == payout.id, Payout.status.in_(from_))
        .values(status=to, **values).execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(payout)
    return changed == 1


def approve(payout_id: int, account: Account) -> Payout:
    """Record this coordinator's approval; with enough approvals the payout is approved
    and, unless it is paid by hand, sent by a job."""
    payout = _get(payout_id)
    if payout.status != "awaiting_approval":
        raise Conflict(f"Payout #{payout.id} is {payout.status.replace('_', ' ')}, "
                       "not awaiting approval.")
    before = audit.snapshot(payout, *AUDITED)
    try:
        db.session.add(PayoutApproval(payout_id=payout.id, account_id=account.id))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"You have already approved payout #{payout_id}; a second, different "
                       "coordinator must approve it too.") from None
    approvals = db.session.scalar(
        select(func.count(PayoutApproval.id)).filter_by(payout_id=payout.id))
    needed = 2 if payout.needs_two_approvals else 1
    if approvals >= needed and not _cas(payout, "approved", ("awaiting_approval",),
                                        approved_at=utcnow()):
        db.session.rollback()
        raise Conflict(f"Payout #{payout_id} was changed by someone else; reload the page.")
    audit.record(account, "approve_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED),
                 note=f"approval {approvals} of {needed}")
    db.session.commit()
    if payout.status == "approved" and payout.method != "manual":
        background.enqueue("rewards.jobs.send_payout", payout.id)
    return payout


def reject(payout_id: int, account: Account, reason: str, rewards_to: str) -> Payout:
    """Reject a payout; its rewards go back to available or are rejected for good, and
    the clawbacks it netted are owed again."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give a reason for the rejection.", field="reason")
    if rewards_to not in ("available", "rejected"):
        raise ServiceError("Choose whether the rewards go back to available or are rejected.",
                           field="rewards_to")
    payout = _get(payout_id)
    before = audit.snapshot(payout, *AUDITED)
    ledger.lock_balance(payout.customer_id, payout.currency)
    if not _cas(payout, "rejected", REJECTABLE_PAYOUT,
                rejection_reason=reason[:400]):
        db.session.rollback()
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')} and can no "
                       "longer be rejected.")
    for reward in db.session.scalars(select(Reward).filter_by(payout_id=payout.id,
                                                              status="in_payout")).all():
        ledger.unreserve(reward, to=rewards_to)
    for line in db.session.scalars(select(Adjustment).filter_by(payout_id=payout.id,
                                                                status="netted")).all():
        line.status, line.payout_id = "owed", None
        ledger.shift_balance(line.customer_id, line.currency, owed=-line.amount)
    audit.record(account, "reject_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED), note=f"rewards {rewards_to}: {reason}")
    db.session.commit()
    return payout


def retry(payout_id: int, account: Account) -> Payout:
    """failed or needs attention -> approved, and send again."""
    payout = _get(payout_id)
    before = audit.snapshot(payout, *AUDITED)
    if not _cas(payout, "approved", RETRYABLE_PAYOUT, failure_reason=None):
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')}; only failed "
                       "payouts or ones that need attention can be retried.")
    audit.record(account, "retry_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED))
    db.session.commit()
    if payout.method != "manual":
        background.enqueue("rewards.jobs.send_payout", payout.id)
    return payout


def mark_paid(payout_id: int, account: Account, reference: str) -> Payout:
    """A manual payout, paid outside the platform, recorded with its reference."""
    reference = (reference or "").strip()
    if not reference:
        raise ServiceError("Give the payment reference (bank transfer id, cheque number...).",
                           field="reference")
    payout = _get(payout_id)
    if payout.method != "manual":
        raise Conflict(f"Payout #{payout_id} is sent through Stripe, not marked paid by hand.")
    before = audit.snapshot(payout, *AUDITED)
    if not _cas(payout, "processing", ("approved",), last_attempt_at=utcnow()):
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')}, not "
                       "approved.")
    _settle(payout, reference=reference[:200])
    audit.record(account, "mark_paid", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED))
    db.session.commit()
    return payout


def _settle(payout: Payout, **values) -> None:
    ledger.lock_balance(payout.customer_id, payout.currency)
    if not _cas(payout, "paid", ("processing",), paid_at=utcnow(), **values):
        raise Conflict(f"Payout #{payout.id} changed while it was being recorded as paid.")
    for reward in db.session.scalars(select(Reward).filter_by(payout_id=payout.id,
                                                              status="in_payout")).all():
        if not ledger.settle(reward):
            raise Conflict(f"A reward of payout #{payout.id} changed while it was paid.")


def send(payout_id: int, *, resume: bool = False) -> str:
    """Send an approved payout through Stripe, once. Returns what happened.

    Only the caller whose compare-and-set moves it approved -> processing calls Stripe;
    `resume` picks up a payout left processing by a sender that died, and first asks
    Stripe whether the transfer was made, so that it is recorded rather than made twice.
    """
    payout = _get(payout_id)
    if payout.method == "manual":
        return "manual"
    if resume:
        last = payout.last_attempt_at
        if payout.status != "processing" or (last and utcnow() - last < STALE_SEND):
            return "not stale"
        # Claim the resumption itself, so two sweeps do not both resume it.
        claimed = db.session.execute(
            update(Payout).where(Payout.id == payout.id, Payout.status == "processing",
                                 Payout.last_attempt_at.is_not_distinct_from(last))
            .values(last_attempt_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            db.session.rollback()
            return "not stale"
    elif not _cas(payout, "processing", ("approved",), last_attempt_at=utcnow(),
                  attempts=Payout.attempts + 1):
        db.session.rollback()
        return "not approved"
    db.session.commit()  # processing (and the idempotency key) are stored before the call
    customer = db.session.get(Customer, payout.customer_id)
    try:
        object_id = _stripe_send(payout, customer, look_first=resume or payout.attempts > 1)
    except stripe_gateway.NotConfigured as error:
        return _back_off(payout, "needs_attention", str(error))
    except stripe_gateway.StripeFailure as failure:
        if failure.kind == "balance":
            return _back_off(payout, "approved", f"Platform balance too low: {failure}")
        if failure.kind == "account":
            return _back_off(payout, "needs_attention", str(failure))
        return _back_off(payout, "failed", str(failure))
    except _NotReady as not_ready:
        return _back_off(payout, "needs_attention", str(not_ready))
    _settle(payout, stripe_object_id=object_id, failure_reason=None)
    db.session.commit()
    return "paid"


class _NotReady(Exception):
    """The customer cannot be paid by their chosen method yet."""


def _attempt_key(payout: Payout) -> str:
    """`payout-<id>` for the first attempt. Stripe keeps a refusal under its key for a day,
    so a retry after one (a low platform balance) needs a key of its own; retries look
    the transfer up first, so no attempt can make a second one."""
    if payout.attempts <= 1:
        return payout.idempotency_key
    return f"{payout.idempotency_key}-retry-{payout.attempts}"


def _stripe_send(payout: Payout, customer: Customer, *, look_first: bool) -> str:
    group, key = payout.idempotency_key, _attempt_key(payout)
    if payout.method == "connect":
        if not customer.stripe_account_id or not customer.stripe_account_ready:
            raise _NotReady("The customer's Stripe account cannot receive transfers yet: "
                            "they must finish Stripe onboarding.")
        found = stripe_gateway.find_transfer(group) if look_first else None
        return found or stripe_gateway.create_transfer(
            amount=payout.amount, currency=payout.currency,
            destination=customer.stripe_account_id, group=group, key=key)
    if not customer.stripe_customer_id:
        raise _NotReady("The customer has no Stripe customer record to credit.")
    found = stripe_gateway.find_store_credit(customer.stripe_customer_id, group) \
        if look_first else None
    return found or stripe_gateway.create_store_credit(
        stripe_customer=customer.stripe_customer_id, amount=payout.amount,
        currency=payout.currency, group=group, key=key)


def _back_off(payout: Payout, to: str, reason: str) -> str:
    db.session.rollback()
    _cas(payout, to, ("processing",), failure_reason=reason[:400])
    audit.record(None, f"payout_{to}", f"payout:{payout.id}", note=reason)
    db.session.commit()
    return to


def stale(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(approved payouts to send again, processing payouts whose sender died)."""
    now = now or utcnow()
    retry_ids = db.session.scalars(select(Payout.id).where(
        Payout.status == "approved", Payout.method != "manual",
        func.coalesce(Payout.last_attempt_at, Payout.approved_at) < now - RETRY_AFTER)).all()
    resume_ids = db.session.scalars(select(Payout.id).where(
        Payout.status == "processing", Payout.method != "manual",
        Payout.last_attempt_at < now - STALE_SEND)).all()
    return list(retry_ids), list(resume_ids)


def totals_by_status(program_id: int | None = None) -> dict[str, dict[str, int]]:
    stmt = select(Payout.status, Payout.currency, func.sum(Payout.amount)).group_by(
        Payout.status, Payout.currency)
    if program_id:
        stmt = stmt.where(Payout.program_id == program_id)
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    for status, currency, amount in db.session.execute(stmt):
        totals[status][currency] = int(amount)
    return dict(totals)
