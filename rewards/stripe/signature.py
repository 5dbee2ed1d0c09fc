"""Stripe's webhook signature, checked exactly as Stripe signs.

The `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (other schemes,
such as v0, are ignored); each v1 is HMAC-SHA256 with the endpoint secret over
`f"{t}.{raw body}"`. Any configured secret may match (several while a secret is rotated).
A timestamp more than TOLERANCE seconds in the past or in the future is refused.
"""

import hashlib
import hmac
import time

TOLERANCE = 300


class SignatureError(Exception):
    """The request is not a webhook Stripe signed with one of our secrets, just now."""


def parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header or not header.strip():
        raise SignatureError("The Stripe-Signature header is missing.")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("The Stripe-Signature header is malformed.")
        if key == "t":
            if timestamp is not None or not value.isdigit():
                raise SignatureError("The Stripe-Signature header has no valid timestamp.")
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.strip())
    if timestamp is None:
        raise SignatureError("The Stripe-Signature header has no timestamp.")
    if not signatures:
        raise SignatureError("The Stripe-Signature header has no v1 signature.")
    return timestamp, signatures


def expected_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(payload: bytes, header: str | None, secrets: list[str], *,
           tolerance: int = TOLERANCE, now: float | None = None) -> int:
    """Check the header against the raw body; returns the timestamp or raises
    SignatureError."""
    timestamp, signatures = parse_header(header)
    matched = False
    for secret in secrets:
        expected = expected_signature(payload, secret, timestamp)
        for signature in signatures:
            # compare_digest on every pair: the time taken says nothing about a match.
            matched |= hmac.compare_digest(expected.encode(), signature.encode())
    if not matched:
        raise SignatureError("No signature matches the body with the endpoint's secrets.")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"The signature's timestamp is more than {tolerance} seconds "
                             "from now.")
    return timestamp
