"""Stripe events for tests, signed exactly as Stripe signs them."""

import hashlib
import hmac
import json
import time

SECRETS = ["whsec_test", "whsec_old"]
POLICY = {"currency": "usd", "hold_days": 0, "referrer": {"percent_bps": 1000}}


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<raw body>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload,
                      hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def body(event: dict) -> bytes:
    return json.dumps(event).encode()


def deliver(client, event: dict | bytes, secret: str | None = None,
            timestamp: int | None = None, header: str | None = None):
    secret = secret or SECRETS[0]
    payload = event if isinstance(event, bytes) else body(event)
    headers = {"Stripe-Signature": header if header is not None
               else sign(payload, secret, timestamp)}
    return client.post("/webhooks/stripe", data=payload, headers=headers,
                       content_type="application/json")


def event(event_id: str, kind: str, obj: dict, created: int | None = None) -> dict:
    created = int(time.time()) - 60 if created is None else created
    return {"id": event_id, "object": "event", "type": kind, "created": created,
            "api_version": "2024-06-20", "livemode": False,
            "data": {"object": obj}}


def checkout(event_id: str, *, pi: str = "pi_1", amount: int = 10000,
             email: str = "friend@example.com", created: int | None = None,
             paid: bool = True, **fields) -> dict:
    obj = {"id": f"cs_{event_id}", "object": "checkout.session", "mode": "payment",
           "payment_status": "paid" if paid else "unpaid", "amount_total": amount,
           "currency": "usd", "payment_intent": pi, "invoice": None, "customer": None,
           "client_reference_id": None, "metadata": {}, "discounts": [],
           "customer_details": {"email": email, "name": "Friend"}}
    obj.update(fields)
    return event(event_id, "checkout.session.completed", obj, created)


def charge_refunded(event_id: str, *, pi: str = "pi_1", amount: int = 10000,
                    refunded: int = 2500, created: int | None = None) -> dict:
    return event(event_id, "charge.refunded", {
        "id": "ch_1", "object": "charge", "payment_intent": pi, "invoice": None,
        "amount": amount, "amount_refunded": refunded, "refunded": refunded == amount,
        "currency": "usd"}, created)


def dispute(event_id: str, kind: str, *, status: str = "needs_response", pi: str = "pi_1",
            amount: int = 10000, created: int | None = None) -> dict:
    return event(event_id, kind, {
        "id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": pi,
        "amount": amount, "currency": "usd", "status": status, "reason": "fraudulent"},
        created)
