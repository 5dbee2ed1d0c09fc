"""Recording purchases, exactly once per order, with their attribution."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Conversion, Program
from .attribution import referral_for, resolve, sentence
from .customers import find_or_add_customer
from .errors import Conflict, NotFound
from .fraud import signals_for_purchase


@dataclass
class NewConversion:
    order_id: str
    amount: int
    currency: str
    occurred_at: datetime
    external_id: str | None = None
    email: str | None = None
    name: str | None = None
    referral_code: str | None = None
    visitor_id: str | None = None
    # The payment card's fingerprint, when Stripe gives one (for the self_card signal).
    card_fingerprint: str | None = None


@dataclass
class ConversionResult:
    conversion: Conversion
    created: bool


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _replay(source: str, order_id: str, digest: str) -> ConversionResult | None:
    existing = db.session.scalar(select(Conversion).filter_by(source=source, order_id=order_id))
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise Conflict(
            f"The order {order_id} was recorded with a different body.", field="order_id"
        )
    return ConversionResult(existing, created=False)


def record_conversion(
    program: Program, data: NewConversion, *, source: str, digest: str
) -> ConversionResult:
    """Record a purchase once; a replay with the same body answers the first, another is 409.

    The follow-up work (the reward computation) is enqueued after the commit, by id.
    """
    replay = _replay(source, data.order_id, digest)
    if replay:
        return replay
    try:
        buyer, _ = find_or_add_customer(program, data.external_id, data.email, data.name)
        attribution = resolve(program, buyer, email=data.email,
                              referral_code=data.referral_code, visitor_id=data.visitor_id,
                              at=data.occurred_at)
        referral = referral_for(program, buyer, attribution, data.occurred_at)
        conversion = Conversion(
            program_id=program.id,
            source=source,
            order_id=data.order_id,
            customer_id=buyer.id,
            referral_id=referral.id if referral else None,
            referrer_id=attribution.referrer.id if attribution.referrer else None,
            amount=data.amount,
            currency=data.currency,
            occurred_at=data.occurred_at,
            matched_by=attribution.matched_by,
            reason=sentence(attribution)[:300],
            request_hash=digest,
            card_fingerprint=data.card_fingerprint,
        )
        db.session.add(conversion)
        db.session.flush()
        signals_for_purchase(conversion, visitor_id=data.visitor_id)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        replay = _replay(source, data.order_id, digest)
        if replay:
            return replay
        raise Conflict("The purchase collided with another request; send it again.") from None
    if conversion.referrer_id is not None:
        from ..jobs import enqueue, process_conversion

        enqueue(process_conversion, conversion.id)
    return ConversionResult(conversion, created=True)


def get_conversion(order_id: str, source: str = "api") -> Conversion:
    conversion = db.session.scalar(select(Conversion).filter_by(source=source, order_id=order_id))
    if conversion is None:
        raise NotFound(f"No purchase has the order id {order_id}.", field="order_id")
    return conversion
