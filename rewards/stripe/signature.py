"""Stripe's webhook signature, checked by Stripe's library, and a timestamp close to now.

`stripe.WebhookSignature.verify_header` reads the `Stripe-Signature` header
(`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, other schemes such as v0 ignored) and matches
a v1 against HMAC-SHA256 of `f"{t}.{body}"` under one secret; each configured secret is
tried in turn (several while a secret is rotated). The signed timestamp must then lie within
TOLERANCE seconds of now, in the past or in the future: the library would refuse only the
past, so the window is checked here, both ways, and no tolerance is passed to it.
"""

import time

from stripe import SignatureVerificationError, WebhookSignature

TOLERANCE = 300


class SignatureError(Exception):
    """The request is not a webhook Stripe signed with one of our secrets, just now."""


def verify(payload: bytes, header: str | None, secrets: list[str], *,
           tolerance: int = TOLERANCE, now: float | None = None) -> int:
    """Check the header against the raw body; returns the signed timestamp or raises
    SignatureError saying why."""
    timestamp = _timestamp(header)
    try:
        # The library signs text (before stripe 16 it would format bytes as "b'...'").
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("The body is not UTF-8, so Stripe did not sign it.") from None
    if not any(_signed(text, header, secret) for secret in secrets):
        raise SignatureError("No v1 signature in the Stripe-Signature header matches the "
                             "body under the endpoint's secrets.")
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise SignatureError(f"The signature's timestamp is more than {tolerance} seconds "
                             "in the past.")
    if timestamp > now + tolerance:
        raise SignatureError(f"The signature's timestamp is more than {tolerance} seconds "
                             "in the future.")
    return timestamp


def _timestamp(header: str | None) -> int:
    """The header's signed timestamp, read by the library's own parser (so it is the one
    the signature is checked with: the first t=), or SignatureError for a header the
    library could not read, so that its refusals in _signed can only mean a mismatch."""
    if not header or not header.strip():
        raise SignatureError("The Stripe-Signature header is missing.")
    # The library compares with hmac.compare_digest, which raises on non-ASCII text.
    if not header.isascii():
        raise SignatureError("The Stripe-Signature header is not ASCII.")
    try:
        timestamp, signatures = WebhookSignature._get_timestamp_and_signatures(
            header, WebhookSignature.EXPECTED_SCHEME)
    except (IndexError, ValueError):
        raise SignatureError("The Stripe-Signature header is malformed: Stripe sends "
                             "t=<unix seconds>,v1=<signature>.") from None
    if not signatures:
        raise SignatureError("The Stripe-Signature header has no v1 signature.")
    return timestamp


def _signed(text: str, header: str, secret: str) -> bool:
    try:
        WebhookSignature.verify_header(text, header, secret)
    except SignatureVerificationError:
        return False
    return True
