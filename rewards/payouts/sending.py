"""Sending an approved payout through Stripe, once: only the caller whose compare-and-set
moves it to processing calls Stripe, with the idempotency key `payout-<id>` stored first; a
payout whose sender died is resumed by finding what Stripe already made."""

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from rewards.audit import log as audit
from rewards.extensions import db
from rewards.models import Customer, Payout, utcnow
from rewards.payouts.transitions import get_payout, move, settle
from rewards.stripe import gateway as stripe_gateway

# A payout still processing this long after its send began is taken to be abandoned.
STALE_SEND = timedelta(minutes=10)


# An approved payout that could not be sent (no Redis, low platform balance) is retried.
RETRY_AFTER = timedelta(minutes=5)


def send(payout_id: int, *, resume: bool = False) -> str:
    """Send an approved payout through Stripe, once. Returns what happened.

    Only the caller whose compare-and-set moves it approved -> processing calls Stripe;
    `resume` picks up a payout left processing by a sender that died, and first asks
    Stripe whether the transfer was made, so that it is recorded rather than made twice.
    """
    payout = get_payout(payout_id)
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
    elif not move(payout, "processing", ("approved",), last_attempt_at=utcnow(),
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
    settle(payout, stripe_object_id=object_id, failure_reason=None)
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
    move(payout, to, ("processing",), failure_reason=reason[:400])
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
