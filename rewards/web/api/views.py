"""The API's calls (shared/API.md, HTTP API): parse, call the domain, answer."""

import re

from flask import jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from rewards.attribution.purchases import (
    NewConversion,
    get_conversion,
    record_conversion,
    request_hash,
)
from rewards.attribution.signups import record_signup
from rewards.errors import NotFound, ServiceError
from rewards.extensions import db
from rewards.ledger.refunds import record_refund
from rewards.models import PAYOUT_STATUSES, Customer, Payout
from rewards.people.customers import find_customer, record_customer
from rewards.people.programs import get_program
from rewards.web.api import answers, bp, parse

STRIPE_CUSTOMER_RE = re.compile(r"^cus_[A-Za-z0-9]+$")
MAX_PAYOUTS = 500


def _created(payload: dict, created: bool):
    return jsonify(payload), 201 if created else 200


@bp.post("/customers")
def create_customer():
    data = parse.body()
    parse.no_unknown(data, {"external_id", "email", "name", "program", "stripe_customer_id"})
    external_id = parse.text(data, "external_id", required=True)
    email = parse.email(data, required=True)
    name = parse.text(data, "name", max_length=120)
    stripe_customer_id = parse.text(data, "stripe_customer_id", max_length=64)
    if stripe_customer_id is not None and not STRIPE_CUSTOMER_RE.match(stripe_customer_id):
        raise ServiceError("stripe_customer_id must be a Stripe customer id such as cus_123.",
                           field="stripe_customer_id")
    program = get_program(parse.text(data, "program", max_length=64))
    row, created = record_customer(program, external_id, email, name,
                                   stripe_customer_id=stripe_customer_id)
    return _created(answers.customer(row), created)


@bp.get("/customers/<external_id>")
def show_customer(external_id: str):
    program = get_program(request.args.get("program"))
    row = find_customer(program, external_id, None)
    if row is None:
        raise NotFound(f"No customer has the external_id {external_id}.", field="external_id")
    return jsonify(answers.customer(row, detail=True))


@bp.post("/signups")
def create_signup():
    data = parse.body()
    parse.no_unknown(data, {"email", "external_id", "name", "referral_code", "visitor_id",
                            "program"})
    result = record_signup(
        get_program(parse.text(data, "program", max_length=64)),
        email=parse.email(data, required=True),
        external_id=parse.text(data, "external_id"),
        name=parse.text(data, "name", max_length=120),
        referral_code=parse.text(data, "referral_code", max_length=32),
        visitor_id=parse.text(data, "visitor_id", max_length=32),
        source="api",
    )
    return _created(answers.signup(result.signup), result.created)


@bp.post("/conversions")
def create_conversion():
    data = parse.body()
    parse.no_unknown(data, {"order_id", "external_id", "email", "name", "amount", "currency",
                            "occurred_at", "referral_code", "visitor_id", "card_fingerprint",
                            "program"})
    new = NewConversion(
        order_id=parse.text(data, "order_id", required=True),
        external_id=parse.text(data, "external_id"),
        email=parse.email(data),
        name=parse.text(data, "name", max_length=120),
        amount=parse.amount(data),
        currency=parse.currency(data),
        occurred_at=parse.timestamp(data),
        referral_code=parse.text(data, "referral_code", max_length=32),
        visitor_id=parse.text(data, "visitor_id", max_length=32),
        card_fingerprint=parse.text(data, "card_fingerprint", max_length=64),
    )
    if not new.external_id and not new.email:
        raise ServiceError("Give the buyer's external_id or email.", field="external_id",
                           code="missing")
    program = get_program(parse.text(data, "program", max_length=64))
    result = record_conversion(program, new, source="api", digest=request_hash(data))
    return _created(answers.conversion(result.conversion), result.created)


@bp.get("/conversions/<order_id>")
def show_conversion(order_id: str):
    return jsonify(answers.conversion(get_conversion(order_id)))


@bp.post("/refunds")
def create_refund():
    data = parse.body()
    parse.no_unknown(data, {"order_id", "amount", "refund_id"})
    conversion = get_conversion(parse.text(data, "order_id", required=True))
    record_refund(conversion, parse.amount(data), parse.text(data, "refund_id"))
    db.session.expire_all()
    return jsonify(answers.conversion(conversion))


@bp.get("/payouts")
def list_payouts():
    """Newest first, at most MAX_PAYOUTS; `status`, `customer` (an external id) and
    `program` (a slug) filter."""
    stmt = (select(Payout).options(joinedload(Payout.customer))
            .order_by(Payout.created_at.desc(), Payout.id.desc()).limit(MAX_PAYOUTS))
    status = request.args.get("status")
    if status is not None:
        if status not in PAYOUT_STATUSES:
            raise ServiceError(f"status must be one of {', '.join(PAYOUT_STATUSES)}.",
                               field="status")
        stmt = stmt.where(Payout.status == status)
    if request.args.get("program"):
        stmt = stmt.where(Payout.program_id == get_program(request.args["program"]).id)
    external_id = request.args.get("customer")
    if external_id is not None:
        stmt = stmt.where(Payout.customer_id.in_(
            select(Customer.id).where(Customer.external_id == external_id)))
    return jsonify({"payouts": [answers.payout(row) for row in db.session.scalars(stmt)]})
