"""Stripe's purchase events (a paid checkout session or invoice) recorded as purchases.

A purchase is tied to a referral by, in order (the link that matched is kept in
`Conversion.matched_via`): `client_reference_id` (a visitor id when the program has clicks
with it, otherwise a referral code), `metadata.referral_code`, the promotion code used (for a
bare `promo_...` id, its code as Stripe gives it), the buyer's Stripe customer id, then the
buyer's email. Stripe unreachable fails the event, which is tried again, rather than record
the purchase unattributed.
"""

from datetime import UTC, datetime

from sqlalchemy import select

from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.errors import Conflict
from rewards.extensions import db
from rewards.models import Click
from rewards.money import format_money
from rewards.people.customers import normalise_email
from rewards.stripe import gateway as stripe_gateway
from rewards.stripe.batch import (
    BadEvent,
    Batch,
    program_of,
    purchase_keys,
    ref_id,
    stripe_conversion,
)


def _promotion_code(obj: dict, metadata: dict) -> str | None:
    discounts = obj.get("discounts") if isinstance(obj.get("discounts"), list) else []
    legacy = obj.get("discount")
    for discount in [*discounts, *([legacy] if isinstance(legacy, dict) else [])]:
        if not isinstance(discount, dict):
            continue  # a bare discount id ("di_...") says nothing about its code
        code = discount.get("promotion_code")
        if isinstance(code, dict):
            code = code.get("code") or code.get("id")
        elif isinstance(code, str) and code.startswith("promo_") and stripe_gateway.configured():
            code = stripe_gateway.promotion_code(code)
        if isinstance(code, str) and code:
            return code
    code = metadata.get("promotion_code")
    return code if isinstance(code, str) and code else None


def _links(program, obj: dict, metadata: dict) -> tuple[tuple[str, str, str], ...]:
    links = []
    reference = obj.get("client_reference_id")
    if isinstance(reference, str) and reference:
        is_visitor = db.session.scalar(select(Click.id).filter_by(
            program_id=program.id, visitor_id=reference[:64]).limit(1)) is not None
        links.append(("client_reference_id", "visitor" if is_visitor else "code", reference))
    code = metadata.get("referral_code")
    if isinstance(code, str) and code:
        links.append(("metadata", "code", code))
    promotion = _promotion_code(obj, metadata)
    if promotion:
        links.append(("promotion_code", "code", promotion))
    return tuple(links)


def _card_fingerprint(obj: dict) -> str | None:
    details = obj.get("payment_method_details")
    card = details.get("card") if isinstance(details, dict) else None
    fingerprint = card.get("fingerprint") if isinstance(card, dict) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


def purchase(event: dict, obj: dict, batch: Batch):
    kind = event["type"]
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        # An asynchronous payment: checkout.session.async_payment_succeeded will follow.
        return "ignored", "Waiting for payment: the session is not paid yet.", None, []
    session = kind.startswith("checkout.session.")
    order_id, payment_intent, invoice_id = purchase_keys(kind, obj)
    keys = [order_id, payment_intent, invoice_id]
    amount = obj.get("amount_total") if session else obj.get("amount_paid")
    currency = obj.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return "ignored", "Nothing was paid, so there is no purchase to record.", order_id, []
    if not isinstance(currency, str) or len(currency) != 3:
        raise BadEvent("The purchase has no valid currency.", field="currency")
    existing = stripe_conversion(keys) if batch.may_be_recorded(keys) else None
    if existing is not None:
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) \
        else {}
    email = details.get("email") or obj.get("customer_email")
    name = details.get("name") or obj.get("customer_name")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    program = program_of(obj, batch)
    # No customer had this email when the batch looked (and none was added since by it).
    unknown = isinstance(email, str) and (program.id, normalise_email(email)) in \
        batch.absent_emails
    new = NewConversion(
        order_id=order_id, amount=amount, currency=currency.lower(),
        occurred_at=datetime.fromtimestamp(event["created"], UTC),
        external_id=None, email=email if isinstance(email, str) else None,
        name=name if isinstance(name, str) else None,
        card_fingerprint=_card_fingerprint(obj),
        stripe_customer_id=ref_id(obj.get("customer")),
        links=_links(program, obj, metadata),
        email_unknown=unknown,
    )
    digest = request_hash({"order_id": order_id, "amount": amount,
                           "currency": currency.lower()})
    try:
        # In this transaction, which has found no purchase for these keys; the rewards
        # are computed once it has committed.
        result = record_conversion(program, new, source="stripe", digest=digest,
                                   commit=False, known_new=True)
    except Conflict:
        existing = stripe_conversion(keys)
        if existing is None:
            raise
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    conversion = result.conversion
    if unknown:  # the buyer is added now: another purchase by them looks them up
        batch.absent_emails.discard((program.id, normalise_email(email)))
    if result.created and conversion.referrer_id is not None:
        batch.to_reward.append(conversion.id)
    via = f" (matched by {conversion.matched_via})" if conversion.matched_via else ""
    outcome = (f"Recorded the purchase {order_id} of "
               f"{format_money(amount, conversion.currency)}{via}: {conversion.reason}")
    return "processed", outcome, order_id, keys
