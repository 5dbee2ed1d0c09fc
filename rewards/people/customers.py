"""Finding and creating customers as the business's servers report them."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.models import Customer, Program
from rewards.people.codes import issue_code


def normalise_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email or None


def find_customer(program: Program, external_id: str | None, email: str | None):
    """By external id first, then by email."""
    if external_id:
        found = db.session.scalar(
            select(Customer).filter_by(program_id=program.id, external_id=external_id)
        )
        if found:
            return found
    if email:
        return db.session.scalar(
            select(Customer).filter_by(program_id=program.id, email=normalise_email(email))
        )
    return None


def find_or_add_customer(
    program: Program, external_id: str | None, email: str | None, name: str | None = None,
    *, email_unknown: bool = False,
) -> tuple[Customer, bool]:
    """The customer with this external id or email, added (with a code) when new.

    Flushes, never commits: the caller's transaction decides. A customer first known by
    email gets the external id when one arrives; two different external ids for one
    email are a conflict. email_unknown (with no external id): the caller has just found
    no customer with this email in its transaction, so none is looked for.
    """
    email = normalise_email(email)
    customer = None if email_unknown and email and not external_id else find_customer(
        program, external_id, email)
    if customer is None:
        customer = Customer(program_id=program.id, external_id=external_id, email=email,
                            name=(name or "").strip()[:120] or None)
        db.session.add(customer)
        db.session.flush()
        issue_code(customer)
        return customer, True
    if external_id and customer.external_id is None:
        customer.external_id = external_id
    elif external_id and customer.external_id != external_id:
        raise Conflict(
            "This email belongs to a customer with another external_id.", field="email"
        )
    if email and customer.email is None:
        customer.email = email
    if name and not customer.name:
        customer.name = name.strip()[:120]
    return customer, False


def record_customer(program: Program, external_id: str, email: str, name: str | None = None,
                    *, stripe_customer_id: str | None = None) -> tuple[Customer, bool]:
    """A customer reported by the business's server (`find_or_add_customer`), committed;
    a racing request that added them first is read instead."""
    for _ in range(3):
        try:
            customer, created = find_or_add_customer(program, external_id, email, name)
            if stripe_customer_id:
                customer.stripe_customer_id = stripe_customer_id
            db.session.commit()
            return customer, created
        except IntegrityError:
            db.session.rollback()  # a racing request added them first; read theirs
        except ServiceError:
            db.session.rollback()
            raise
    raise Conflict("The customer collided with another request; send it again.")
