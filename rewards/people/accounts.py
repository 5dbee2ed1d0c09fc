"""Logins: staff accounts, customers' own logins, and authentication."""

from sqlalchemy import select

from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.models import ROLES, Account, Customer, Program, utcnow
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


def add_customer_login(program: Program, *, email: str, password: str,
                       name: str | None = None) -> Account | None:
    """A customer's own login, with their customer record (found by email, or added with a
    code), flushed for the caller to commit. None when the email already has a login; the
    password is hashed either way, so that the answer takes as long."""
    email = normalise_email(email)
    _check_password(password, email or "")
    password_hash = hash_password(password)
    if db.session.scalar(select(Account.id).filter_by(email=email)):
        return None
    customer = _customer_for(program, email, name)
    if customer.name is None and name:
        customer.name = name.strip()[:120]
    account = Account(email=email, password_hash=password_hash, role="customer",
                      name=(name or "").strip() or None, customer_id=customer.id)
    db.session.add(account)
    db.session.flush()
    return account


def authenticate(email: str, password: str) -> Account | None:
    account = db.session.scalar(select(Account).filter_by(email=normalise_email(email)))
    if not verify_password(account.password_hash if account else None, password):
        return None
    account.last_login_at = utcnow()
    db.session.commit()
    return account
