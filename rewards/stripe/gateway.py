"""The only module that talks to Stripe.

It uses `stripe.StripeClient` with the API base from config (STRIPE_API_BASE), so tests
point it at a local fake server and production uses Stripe unchanged. Every create call
takes a deterministic idempotency key that the caller stored before calling.
"""

from dataclasses import dataclass

import stripe
from flask import current_app

# Stripe error codes that mean the connected account cannot take the money as it stands.
ACCOUNT_CODES = frozenset({
    "account_invalid", "insufficient_capabilities_for_transfer", "transfers_not_allowed",
    "account_closed", "no_account", "payouts_not_allowed",
})
BALANCE_CODES = frozenset({"balance_insufficient", "insufficient_funds"})
# The events the webhook consumes (API.md, Stripe events consumed): select these when
# registering the endpoint.
WEBHOOK_PATH = "/webhooks/stripe"


class NotConfigured(RuntimeError):
    """STRIPE_API_KEY is unset: Stripe features are off."""


@dataclass
class StripeFailure(Exception):
    """A refusal from Stripe, sorted into what the caller does next."""

    kind: str  # "balance" (retry later), "account" (needs attention) or "other"
    message: str

    def __str__(self) -> str:
        return self.message


def configured() -> bool:
    return bool(current_app.config.get("STRIPE_API_KEY"))


def webhook_configured() -> bool:
    return bool(current_app.config.get("STRIPE_WEBHOOK_SECRETS"))


def webhook_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + WEBHOOK_PATH


def client() -> stripe.StripeClient:
    key = current_app.config.get("STRIPE_API_KEY")
    if not key:
        raise NotConfigured("Stripe is not configured: set STRIPE_API_KEY.")
    base = current_app.config.get("STRIPE_API_BASE")
    return stripe.StripeClient(key, base_addresses={"api": base} if base else None,
                               max_network_retries=2)


def _failure(error: stripe.StripeError) -> StripeFailure:
    code = getattr(error, "code", None) or ""
    message = getattr(error, "user_message", None) or str(error) or "Stripe refused the request."
    if code in BALANCE_CODES:
        return StripeFailure("balance", message)
    if code in ACCOUNT_CODES:
        return StripeFailure("account", message)
    return StripeFailure("other", message)


def find_transfer(group: str) -> str | None:
    """The transfer already made for this payout (its transfer group), if any."""
    try:
        found = client().v1.transfers.list(params={"transfer_group": group, "limit": 1})
    except stripe.StripeError as error:
        raise _failure(error) from error
    return found.data[0].id if found.data else None


def create_transfer(*, amount: int, currency: str, destination: str, group: str,
                    key: str) -> str:
    try:
        transfer = client().v1.transfers.create(
            params={"amount": amount, "currency": currency, "destination": destination,
                    "transfer_group": group, "metadata": {"payout": group}},
            options={"idempotency_key": key},
        )
    except stripe.StripeError as error:
        raise _failure(error) from error
    return transfer.id


def find_store_credit(stripe_customer: str, group: str) -> str | None:
    try:
        found = client().v1.customers.balance_transactions.list(stripe_customer,
                                                                params={"limit": 100})
    except stripe.StripeError as error:
        raise _failure(error) from error
    for entry in found.data:
        if (entry.metadata or {}).get("payout") == group:
            return entry.id
    return None


def create_store_credit(*, stripe_customer: str, amount: int, currency: str, group: str,
                        key: str) -> str:
    """A credit on the customer's own Stripe balance, used up by their next invoices."""
    try:
        entry = client().v1.customers.balance_transactions.create(
            stripe_customer,
            params={"amount": -amount, "currency": currency,
                    "description": "Referral rewards", "metadata": {"payout": group}},
            options={"idempotency_key": key},
        )
    except stripe.StripeError as error:
        raise _failure(error) from error
    return entry.id


def create_connected_account(*, email: str | None, key: str) -> str:
    try:
        account = client().v1.accounts.create(
            params={"type": "express", "email": email or None,
                    "capabilities": {"transfers": {"requested": True}}},
            options={"idempotency_key": key},
        )
    except stripe.StripeError as error:
        raise _failure(error) from error
    return account.id


def onboarding_link(*, account: str, refresh_url: str, return_url: str) -> str:
    try:
        link = client().v1.account_links.create(params={
            "account": account, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_onboarding"})
    except stripe.StripeError as error:
        raise _failure(error) from error
    return link.url


# Promotion codes never change their text, so each process asks Stripe once per id.
_promotion_codes: dict[str, str | None] = {}


def promotion_code(promotion_id: str) -> str | None:
    """The customer-facing code of a promotion code id (`promo_...`); None when Stripe has
    no such promotion code. Other refusals raise, so the caller can try again later."""
    if promotion_id not in _promotion_codes:
        try:
            found = client().v1.promotion_codes.retrieve(promotion_id)
        except stripe.InvalidRequestError as error:
            if getattr(error, "code", None) != "resource_missing":
                raise _failure(error) from error
            return None
        except stripe.StripeError as error:
            raise _failure(error) from error
        _promotion_codes[promotion_id] = getattr(found, "code", None)
    return _promotion_codes[promotion_id]


def list_events(since: int, starting_after: str | None = None) -> tuple[list[dict], bool]:
    """One page (up to 100, newest first as Stripe lists them) of the events Stripe holds
    created at or after `since` (seconds since the epoch), as plain dicts, and whether
    more follow (pass the last id as `starting_after`)."""
    params: dict = {"created": {"gte": since}, "limit": 100}
    if starting_after:
        params["starting_after"] = starting_after
    try:
        page = client().v1.events.list(params=params)
    except stripe.StripeError as error:
        raise _failure(error) from error
    return [event.to_dict() for event in page.data], bool(page.has_more)
