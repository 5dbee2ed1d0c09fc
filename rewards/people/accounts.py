"""Logins: customer self-registration, staff accounts, and authentication."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.attribution.signups import attribute_signup
from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.models import ROLES, Account, Customer, Program, Signup, utcnow
from rewards.people.codes import issue_code
from rewards.people.customers import find_customer, normalise_email
from rewards.people.passwords import hash_password, password_problem, verify_password


def _check_password(password: str, email: str) -> None:
    problem = password_problem(password, email)
    if problem:
        raise ServiceError(problem, field="password")


def create_account(email: str, password: str, role: str, name: str | None = None) -> Account:
    """A staff or customer login, as the CLI makes them."""
    email = normalise_email(email)
    if role not in ROLES:
        raise ServiceError(f"Role must be one of {', '.join(ROLES)}.", field="role")
    if not email or "@" not in email:
        raise ServiceError("Give a valid email address.", field="email")
    _check_password(password, email)
    if db.session.scalar(select(Account.id).filter_by(email=email)):
        raise Conflict(f"An account with the email {email} exists.", field="email")
    account = Account(email=email, password_hash=hash_password(password), role=role,
                      name=(name or "").strip() or None)
    if role == "customer":
        from rewards.people.programs import get_program

        customer = _customer_for(get_program(None), email, name)
        account.customer_id = customer.id
    db.session.add(account)
    db.session.commit()
    return account


def _customer_for(program: Program, email: str, name: str | None) -> Customer:
    customer = find_customer(program, None, email)
    if customer is None:
        customer = Customer(program_id=program.id, email=email,
                            name=(name or "").strip()[:120] or None)
        db.session.add(customer)
        db.session.flush()
        issue_code(customer)
    return customer


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
    """Self-registration from /signup or a friend's landing page.

    Returns the new account, or None when the email already has one. The caller answers
    both the same way so that registration never tells whether an email exists; hashing
    the password either way keeps the timing alike too.
    """
    email = normalise_email(email)
    _check_password(password, email or "")
    password_hash = hash_password(password)
    if db.session.scalar(select(Account.id).filter_by(email=email)):
        return None
    try:
        customer = _customer_for(program, email, name)
        if customer.name is None and name:
            customer.name = name.strip()[:120]
        account = Account(email=email, password_hash=password_hash, role="customer",
                          name=(name or "").strip() or None, customer_id=customer.id)
        db.session.add(account)
        db.session.flush()
        if not db.session.scalar(select(Signup.id).filter_by(customer_id=customer.id)):
            attribute_signup(program, customer, source="web", referral_code=referral_code,
                             visitor_id=visitor_id, ip_hash=ip_hash)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return account


def authenticate(email: str, password: str) -> Account | None:
    account = db.session.scalar(select(Account).filter_by(email=normalise_email(email)))
    if not verify_password(account.password_hash if account else None, password):
        return None
    account.last_login_at = utcnow()
    db.session.commit()
    return account
