"""Connected accounts: Stripe's `account.updated` says whether a referrer paid through
Stripe Connect can receive transfers yet."""

from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Customer


def account_ready(account_object: dict) -> bool:
    """Whether a Stripe account object can receive transfers."""
    if account_object.get("payouts_enabled") is True:
        return True
    capabilities = account_object.get("capabilities") or {}
    return isinstance(capabilities, dict) and capabilities.get("transfers") == "active"


def account_updated(account_object: dict, *, commit: bool = True) -> Customer | None:
    """Apply Stripe's `account.updated` object: the customer with that connected account
    is marked ready or not. Returns the customer (None for an account not ours).
    Commits (unless commit=False: the caller's transaction); running it twice with the
    same object changes nothing."""
    account_id = account_object.get("id")
    if not isinstance(account_id, str) or not account_id:
        return None
    customer = db.session.scalar(select(Customer).filter_by(stripe_account_id=account_id))
    if customer is None:
        return None
    ready = account_ready(account_object)
    if customer.stripe_account_ready != ready:
        customer.stripe_account_ready = ready
        if commit:
            db.session.commit()
        else:
            db.session.flush()
    return customer


def account_updated_event(event: dict, obj: dict, batch) -> tuple[str, str, None, list]:
    """The `account.updated` event's handler (see `rewards.stripe.processing.HANDLERS`)."""
    customer = account_updated(obj, commit=False)
    if customer is None:
        return "processed", f"The account {obj.get('id')} is not a referrer's.", None, []
    state = "can" if customer.stripe_account_ready else "cannot yet"
    return ("processed", f"Customer #{customer.id}'s Stripe account {state} receive payouts.",
            None, [])
