"""Creating and changing referral programs."""

import re

from sqlalchemy import select

from rewards.audit import log as audit
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.models import ATTRIBUTION_MODELS, PAYOUT_SCHEDULES, Account, Program
from rewards.people.codes import forget
from rewards.urls import host_of, is_allowed_destination

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CURRENCY_RE = re.compile(r"^[a-z]{3}$")
MAX_AMOUNT = 10**12  # minor units: ten billion in a two-decimal currency
MAX_VELOCITY = 10_000
# What an admin may change, in the order the audit log lists it.
EDITABLE = ("name", "window_days", "attribution", "landing_headline", "landing_offer",
            "destination_url", "allowed_domain", "payout_schedule", "payout_minimum",
            "second_approval_above", "velocity_limit")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_payouts(values: dict) -> dict:
    schedule = values.get("payout_schedule", "on_demand")
    if schedule not in PAYOUT_SCHEDULES:
        raise ServiceError("The payout schedule must be on_demand, weekly or monthly.",
                           field="payout_schedule")
    minimum = values.get("payout_minimum", 0)
    if not _whole(minimum) or not 0 <= minimum <= MAX_AMOUNT:
        raise ServiceError("The payout minimum must be a whole amount in minor units, "
                           "0 or more.", field="payout_minimum")
    second = values.get("second_approval_above")
    if second is not None and (not _whole(second) or not 0 <= second <= MAX_AMOUNT):
        raise ServiceError("The second-approval threshold must be a whole amount in minor "
                           "units, 0 or more, or empty.", field="second_approval_above")
    velocity = values.get("velocity_limit", 10)
    if not _whole(velocity) or not 1 <= velocity <= MAX_VELOCITY:
        raise ServiceError(f"The velocity limit must be 1 to {MAX_VELOCITY:,} signups per "
                           "code per hour.", field="velocity_limit")
    return {"payout_schedule": schedule, "payout_minimum": minimum,
            "second_approval_above": second, "velocity_limit": velocity}


def default_program() -> Program | None:
    return db.session.scalar(select(Program).filter_by(is_default=True))


def get_program(slug: str | None) -> Program:
    """The program named by `slug`, or the default one when no slug is given."""
    program = default_program() if not slug else db.session.scalar(
        select(Program).filter_by(slug=slug)
    )
    if program is None:
        if slug:
            raise NotFound(f"No program has the slug '{slug}'.", field="program")
        raise NotFound("No program exists yet: create one with `flask rewards create-program`.")
    return program


def _check(values: dict) -> dict:
    currency = (values.get("currency") or "").strip().lower()
    if not CURRENCY_RE.match(currency):
        raise ServiceError("Currency must be a three-letter ISO 4217 code such as usd.",
                           field="currency")
    window = values.get("window_days", 30)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 365:
        raise ServiceError("The attribution window must be 1 to 365 days.", field="window_days")
    attribution = values.get("attribution", "last")
    if attribution not in ATTRIBUTION_MODELS:
        raise ServiceError("Attribution must be 'last' or 'first'.", field="attribution")
    destination = (values.get("destination_url") or "").strip() or None
    allowed = (values.get("allowed_domain") or "").strip().lower() or None
    if destination:
        allowed = allowed or host_of(destination)
        if not is_allowed_destination(destination, allowed):
            raise ServiceError(
                "The destination must be an http(s) address on the allowed domain.",
                field="destination_url",
            )
    name = (values.get("name") or "").strip()
    if not name:
        raise ServiceError("A program needs a name.", field="name")
    return {
        "name": name[:120],
        "currency": currency,
        "window_days": window,
        "attribution": attribution,
        "destination_url": destination,
        "allowed_domain": allowed if destination else None,
        "landing_headline": (values.get("landing_headline") or "").strip()[:200],
        "landing_offer": (values.get("landing_offer") or "").strip()[:2000],
    } | _check_payouts(values)


def create_program(slug: str, **values) -> Program:
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        raise ServiceError("A slug is 1 to 63 lower-case letters, digits or dashes.",
                           field="slug")
    fields = _check(values)
    if db.session.scalar(select(Program.id).filter_by(slug=slug)):
        raise Conflict(f"A program with the slug '{slug}' exists.", field="slug")
    is_default = default_program() is None
    fields["landing_headline"] = (fields["landing_headline"]
                                  or f"You've been invited to {fields['name']}")
    program = Program(slug=slug, is_default=is_default, **fields)
    db.session.add(program)
    db.session.commit()
    return program


def update_program(program: Program, account: Account | None = None, **values) -> Program:
    """Change a program's settings; the change is audited (who, and the changed fields
    before and after) in the same transaction. The slug stays."""
    fields = ("currency", *EDITABLE)
    before = audit.snapshot(program, *fields)
    checked = _check(before | values)
    for key in fields:
        setattr(program, key, checked[key])
    after = audit.snapshot(program, *fields)
    changed = [key for key in fields if before[key] != after[key]]
    if changed:
        audit.record(account, "update_program", f"program:{program.id}",
                     before={key: before[key] for key in changed},
                     after={key: after[key] for key in changed})
    db.session.commit()
    forget()  # the redirect caches each code's destination
    return program
