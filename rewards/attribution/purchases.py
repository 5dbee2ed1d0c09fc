"""Recording purchases, exactly once per order, with their attribution."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards import background
from rewards.analytics.rollups import touch_purchase
from rewards.attribution.resolver import NO_MATCH, Attribution, referral_for, resolve, sentence
from rewards.errors import Conflict, NotFound
from rewards.extensions import db
from rewards.fraud.signals import signals_for_purchase
from rewards.models import Conversion, Customer, Program
from rewards.people.customers import find_or_add_customer


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
    # Stripe only: the buyer's Stripe customer id (finds the buyer first, and is stored on
    # them), and the links of the Stripe chain to try in order, each (via, kind, value)
    # with kind "code" or "visitor"; the first that attributes is recorded in matched_via.
    # None for the JSON API, whose chain is referral_code then visitor_id as before.
    stripe_customer_id: str | None = None
    links: tuple[tuple[str, str, str], ...] | None = None
    # The caller found no customer of the program with this email in its transaction, so
    # it is not looked for again (the unique (program, email) constraint still holds).
    email_unknown: bool = False


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
    program: Program, data: NewConversion, *, source: str, digest: str, commit: bool = True,
    known_new: bool = False,
) -> ConversionResult:
    """Record a purchase once; a replay with the same body answers the first, another is 409.

    The follow-up work (the reward computation) is enqueued after the commit, by id.
    With commit=False (a caller that owns the transaction: Stripe event processing) the
    purchase is flushed, not committed, a collision raises IntegrityError with nothing
    rolled back, and the reward computation is the caller's, after its commit.
    known_new: the caller has just found no purchase with this order id in its
    transaction, so it is not looked for again (the unique constraint still holds).
    """
    replay = None if known_new else _replay(source, data.order_id, digest)
    if replay:
        return replay
    try:
        buyer, found_by = _buyer(program, data)
        matched_via = None
        if data.links is None:
            # found_by is None for a buyer added just now, who has no referral yet.
            attribution = resolve(program, buyer, email=data.email,
                                  referral_code=data.referral_code,
                                  visitor_id=data.visitor_id, at=data.occurred_at,
                                  friend_is_new=found_by is None)
        else:
            attribution, matched_via = _resolve_links(program, buyer, data, found_by)
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
            matched_via=matched_via,
            reason=sentence(attribution)[:300],
            request_hash=digest,
            card_fingerprint=data.card_fingerprint,
        )
        db.session.add(conversion)
        db.session.flush()
        if conversion.referrer_id is not None:
            touch_purchase(conversion, buyer_is_new=found_by is None)
        signals_for_purchase(conversion, visitor_id=data.visitor_id,
                             referral_is_new=referral is not None
                             and referral is not attribution.referral)
        if not commit:
            return ConversionResult(conversion, created=True)
        db.session.commit()
    except IntegrityError:
        if not commit:
            raise
        db.session.rollback()
        replay = _replay(source, data.order_id, digest)
        if replay:
            return replay
        raise Conflict("The purchase collided with another request; send it again.") from None
    if conversion.referrer_id is not None:
        background.enqueue("rewards.jobs.process_conversion", conversion.id)
    return ConversionResult(conversion, created=True)


def _buyer(program: Program, data: NewConversion) -> tuple[Customer, str | None]:
    """The buyer, and how a known one was found ("stripe_customer" or "email"; None when
    new). A Stripe customer id finds the buyer first and is stored on a buyer without one."""
    if data.stripe_customer_id:
        known = db.session.scalar(
            select(Customer).filter_by(program_id=program.id,
                                       stripe_customer_id=data.stripe_customer_id)
            .order_by(Customer.id).limit(1))
        if known is not None:
            return known, "stripe_customer"
    buyer, created = find_or_add_customer(program, data.external_id, data.email, data.name,
                                          email_unknown=data.email_unknown)
    if data.stripe_customer_id and buyer.stripe_customer_id is None:
        buyer.stripe_customer_id = data.stripe_customer_id
        db.session.flush()
    return buyer, (None if created else "email")


def _resolve_links(program: Program, buyer: Customer, data: NewConversion,
                   found_by: str | None) -> tuple[Attribution, str | None]:
    """Stripe's chain: each link in order, then the buyer's earlier referral (the buyer
    known by Stripe customer id or by email). Returns the attribution and the link."""
    refusals: list[str] = []
    new = found_by is None  # a buyer added just now has no referral yet
    for via, kind, value in data.links:
        attribution = resolve(program, buyer, email=data.email, at=data.occurred_at,
                              referral_code=value if kind == "code" else None,
                              visitor_id=value if kind == "visitor" else None,
                              friend_is_new=new)
        if attribution.attributed:
            attribution.refusals = refusals + attribution.refusals
            # A friend is referred once: their earlier referral stands over any link.
            return attribution, (found_by if attribution.matched_by == "signup" else via)
        refusals += attribution.refusals
    attribution = resolve(program, buyer, email=data.email, at=data.occurred_at,
                          friend_is_new=new)
    if attribution.attributed:
        return attribution, found_by
    return Attribution(reason=refusals[0] if refusals else NO_MATCH, refusals=refusals), None


def get_conversion(order_id: str, source: str = "api") -> Conversion:
    conversion = db.session.scalar(select(Conversion).filter_by(source=source, order_id=order_id))
    if conversion is None:
        raise NotFound(f"No purchase has the order id {order_id}.", field="order_id")
    return conversion
