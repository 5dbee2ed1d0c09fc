"""Recording a friend's signup, from the hosted landing page or the API."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.analytics.rollups import touch
from rewards.attribution.resolver import referral_for, resolve, sentence
from rewards.extensions import db
from rewards.fraud.signals import signals_for_signup
from rewards.models import Account, Customer, Program, Signup, utcnow
from rewards.people.accounts import add_customer_login
from rewards.people.customers import find_or_add_customer


@dataclass
class SignupResult:
    signup: Signup
    created: bool


def attribute_signup(
    program: Program,
    customer: Customer,
    *,
    source: str,
    referral_code: str | None = None,
    visitor_id: str | None = None,
    at: datetime | None = None,
    ip_hash: str | None = None,
) -> Signup:
    """Add the signup row for a customer already in the session (flushed, not committed),
    with the fraud signals of a referred signup."""
    at = at or utcnow()
    attribution = resolve(program, customer, email=customer.email, referral_code=referral_code,
                          visitor_id=visitor_id, at=at)
    referral = referral_for(program, customer, attribution, at)
    signup = Signup(
        program_id=program.id,
        customer_id=customer.id,
        referral_id=referral.id if referral else None,
        visitor_id=visitor_id,
        source=source,
        reason=sentence(attribution)[:300],
        created_at=at,
    )
    db.session.add(signup)
    db.session.flush()
    touch(program.id, at)
    if referral is not None:
        signals_for_signup(referral, visitor_id=visitor_id, ip_hash=ip_hash, at=at)
    return signup


def record_signup(
    program: Program,
    *,
    email: str,
    external_id: str | None = None,
    name: str | None = None,
    referral_code: str | None = None,
    visitor_id: str | None = None,
    source: str = "api",
) -> SignupResult:
    """A signup reported by the business. Repeats (and racing duplicates) answer the first."""
    for _ in range(3):
        try:
            customer, _new = find_or_add_customer(program, external_id, email, name)
            existing = db.session.scalar(select(Signup).filter_by(customer_id=customer.id))
            if existing:
                db.session.commit()
                return SignupResult(existing, created=False)
            signup = attribute_signup(program, customer, source=source,
                                      referral_code=referral_code, visitor_id=visitor_id)
            db.session.commit()
            return SignupResult(signup, created=True)
        except IntegrityError:
            # Another request added the same customer or signup first: read theirs.
            db.session.rollback()
    raise RuntimeError("signup kept colliding")  # pragma: no cover - three lost races in a row


def register_customer(
    program: Program,
    *,
    email: str,
    password: str,
    name: str | None = None,
    referral_code: str | None = None,
    visitor_id: str | None = None,
    ip_hash: str | None = None,
) -> Account | None:
    """Self-registration from /signup or a friend's landing page: the login, and the
    signup with its attribution when the customer has none yet.

    Returns the new account, or None when the email already has one. The caller answers
    both the same way so that registration never tells whether an email exists.
    """
    try:
        account = add_customer_login(program, email=email, password=password, name=name)
        if account is None:
            return None
        customer = account.customer
        if not db.session.scalar(select(Signup.id).filter_by(customer_id=customer.id)):
            attribute_signup(program, customer, source="web", referral_code=referral_code,
                             visitor_id=visitor_id, ip_hash=ip_hash)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return account
