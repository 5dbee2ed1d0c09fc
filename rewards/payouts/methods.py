"""How a customer is paid: Stripe Connect, store credit on their Stripe customer, or by
hand (the coordinator pays outside the platform and records the reference).

A payout takes the customer's method when it is proposed; changing the method later
applies to the payouts proposed after the change.
"""

from flask import current_app, url_for
from sqlalchemy import select, update

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import PAYOUT_METHODS, RETRYABLE_PAYOUT, Customer, Payout
from rewards.stripe import gateway as stripe_gateway

LABELS = {"connect": "Stripe Connect", "store_credit": "Store credit",
          "manual": "Paid by the business"}
NOT_CONFIGURED = "Stripe is not set up on this platform yet, so this option is off."
NO_STRIPE_CUSTOMER = ("Store credit needs your account with the business to be linked to "
                      "this program. Ask the business to link it.")
NO_CONNECTED_ACCOUNT = "Set up your Stripe account first."


class Unavailable(ServiceError):
    status = 409
    code = "unavailable"


def unavailable_reason(customer: Customer, method: str) -> str | None:
    """Why `method` cannot be chosen by this customer now, or None when it can."""
    if method == "manual":
        return None
    if not stripe_gateway.configured():
        return NOT_CONFIGURED
    if method == "store_credit" and not customer.stripe_customer_id:
        return NO_STRIPE_CUSTOMER
    return None


def options(customer: Customer) -> list[dict]:
    """The three methods as the portal shows them, with why one is off."""
    return [{"method": method, "label": LABELS[method],
             "chosen": customer.payout_method == method,
             "unavailable": unavailable_reason(customer, method)}
            for method in PAYOUT_METHODS]


def choose_method(customer: Customer, method: str) -> Customer:
    """Make `method` the customer's way of being paid. Connect needs a connected
    account (start_connect_onboarding makes one); it need not be ready yet: a payout
    sent before Stripe has finished checking it waits as needing attention."""
    if method not in PAYOUT_METHODS:
        raise ServiceError("Choose Stripe Connect, store credit or manual payment.",
                           field="method")
    reason = unavailable_reason(customer, method)
    if reason:
        raise Unavailable(reason, field="method")
    if method == "connect" and not customer.stripe_account_id:
        raise Unavailable(NO_CONNECTED_ACCOUNT, field="method")
    customer.payout_method = method
    db.session.commit()
    return customer


def _portal_url(**query) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + url_for("portal.payouts", **query)


def start_connect_onboarding(customer: Customer) -> str:
    """The Stripe-hosted onboarding address for the customer's connected account, made
    on first use (once: the idempotency key is per customer). Connect becomes the payout
    method of a customer who had none; one who is paid another way keeps it until they
    choose Connect, so that a half-finished setup does not hold their payouts."""
    reason = unavailable_reason(customer, "connect")
    if reason:
        raise Unavailable(reason, field="method")
    try:
        if not customer.stripe_account_id:
            account = stripe_gateway.create_connected_account(
                email=customer.email, key=f"connect-account-{customer.id}")
            # Only the first of two racing requests stores it (Stripe answered both with
            # the same account: same idempotency key).
            db.session.execute(
                update(Customer).where(Customer.id == customer.id,
                                       Customer.stripe_account_id.is_(None))
                .values(stripe_account_id=account, stripe_account_ready=False)
                .execution_options(synchronize_session=False))
            db.session.commit()
            db.session.refresh(customer)
        if customer.payout_method is None:
            customer.payout_method = "connect"
            db.session.commit()
        return stripe_gateway.onboarding_link(
            account=customer.stripe_account_id,
            refresh_url=_portal_url(stripe="refresh"),
            return_url=_portal_url(stripe="return"))
    except stripe_gateway.NotConfigured:
        db.session.rollback()
        raise Unavailable(NOT_CONFIGURED, field="method") from None
    except stripe_gateway.StripeFailure as failure:
        db.session.rollback()
        raise Unavailable(f"Stripe could not start the setup: {failure}. Try again later.",
                          field="method") from None


# Failure reasons as Stripe or the sender word them, in plain words for the customer.
_PLAIN_REASONS = (
    ("onboarding", "Your Stripe account is not ready to receive money yet. Finish the "
                   "Stripe setup under \"How you get paid\"."),
    ("Stripe customer record", "Store credit cannot be given until the business links "
                               "your account. Choose another way to be paid, or ask them."),
    ("not configured", "Payments through Stripe are switched off for now. The business "
                       "will sort it out."),
)
_GENERIC_REASON = ("The payment could not be sent. The business has been told and will "
                   "retry it or contact you.")


def plain_failure(payout: Payout) -> str | None:
    """Why a payout is stuck, as the customer should read it (never Stripe's raw text)."""
    if payout.status not in RETRYABLE_PAYOUT:
        return None
    reason = payout.failure_reason or ""
    for needle, words in _PLAIN_REASONS:
        if needle.lower() in reason.lower():
            return words
    if payout.method == "connect" and payout.status == "needs_attention":
        return ("Stripe could not pay into your account. Check your details in the "
                "Stripe setup under \"How you get paid\".")
    return _GENERIC_REASON


def history(customer: Customer, limit: int = 100) -> list[Payout]:
    return list(db.session.scalars(
        select(Payout).filter_by(customer_id=customer.id)
        .order_by(Payout.created_at.desc(), Payout.id.desc()).limit(limit)))
