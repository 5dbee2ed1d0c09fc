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
