"""Referral codes and links: generation, vanity codes, the QR code, and a fast lookup."""

import io
import re
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

import segno
import shortuuid
from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.urls import iri_to_uri

from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.models import Customer, Program, ReferralCode
from rewards.urls import is_allowed_destination, split_at_query_param

# Upper-case letters and digits without 0/O, 1/I/L: easy to read aloud and type.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_generator = shortuuid.ShortUUID(alphabet=CODE_ALPHABET)

VANITY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{1,30}[A-Za-z0-9])$")
# Path segments and words that would confuse people if used as a code.
RESERVED = frozenset([
    "admin", "administrator", "api", "app", "assets", "auth", "billing", "coordinator",
    "dashboard", "help", "join", "login", "logout", "marketing", "null", "portal", "r",
    "root", "signup", "static", "staff", "stripe", "support", "system", "undefined",
    "webhooks", "www", "rewards", "referral", "referrals",
])


def new_code() -> str:
    return _generator.random(length=CODE_LENGTH)


def issue_code(customer: Customer) -> int:
    """Give a customer a fresh random code (in the caller's transaction, not committed);
    returns the code's id.

    One statement, as every new customer (a Stripe purchase's buyer too) gets a code:
    insert ... on conflict (code_key) do nothing; a code that is taken (never in
    practice) inserts nothing and another is drawn."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ReferralCode.__table__
    for _ in range(10):
        code = new_code()
        code_id = db.session.execute(
            insert(table)
            .values(program_id=customer.program_id, customer_id=customer.id, code=code,
                    code_key=code.lower(), is_primary=True)
            .on_conflict_do_nothing(index_elements=["code_key"])
            .returning(table.c.id)).scalar()
        if code_id is not None:
            return code_id
    raise RuntimeError("could not find a free referral code")  # 31^8 codes: never in practice


def primary_code(customer: Customer) -> ReferralCode | None:
    return db.session.scalar(
        select(ReferralCode)
        .filter_by(customer_id=customer.id, is_primary=True, active=True)
        .order_by(ReferralCode.id.desc())
    )


def referral_url(code: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/r/{code}"


def vanity_problem(code: str) -> str | None:
    if not VANITY_RE.match(code):
        return "Use 3 to 32 letters, digits or dashes, starting and ending with a letter or digit."
    if code.lower() in RESERVED:
        return f"'{code}' is reserved; choose another."
    return None


def set_vanity_code(customer: Customer, code: str) -> ReferralCode:
    """Make `code` the customer's primary code. Their earlier codes keep working."""
    code = code.strip()
    problem = vanity_problem(code)
    if problem:
        raise ServiceError(problem, field="code")
    existing = db.session.scalar(select(ReferralCode).filter_by(code_key=code.lower()))
    if existing and existing.customer_id != customer.id:
        raise Conflict(f"The code '{code}' is taken.", field="code")
    for row in db.session.scalars(select(ReferralCode).filter_by(customer_id=customer.id)):
        row.is_primary = False
    if existing:
        existing.code, existing.is_primary, existing.active = code, True, True
        row = existing
    else:
        row = ReferralCode(
            program_id=customer.program_id,
            customer_id=customer.id,
            code=code,
            code_key=code.lower(),
            is_vanity=True,
            is_primary=True,
        )
        db.session.add(row)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise Conflict(f"The code '{code}' is taken.", field="code") from None
    forget(code)
    return row


def qr_svg(url: str) -> bytes:
    """A standalone SVG of the link's QR code, served as image/svg+xml."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False,
                                    title="QR code of your referral link")
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """What the redirect needs to know about a code, without touching the database."""

    code_id: int
    code: str
    program_id: int
    customer_id: int
    destination: str | None
    window_days: int
    # The destination cut around its visitor_id value (see split_at_query_param).
    destination_parts: tuple[str, str] | None = None

    def destination_for(self, visitor_id: str) -> str | None:
        """The destination carrying `visitor_id`, or None when clicks go to the landing page."""
        if self.destination_parts is None:
            return None
        before, after = self.destination_parts
        return before + quote_plus(visitor_id) + after


_cache: dict[str, tuple[float, object]] = {}
_CACHE_LIMIT = 50_000


def lookup(code: str) -> CodeEntry | None:
    """The active code `code` (any case), from a small in-process cache."""
    key = code.lower()
    if not key or len(key) > 32:
        return None
    return _cached(key, _load)


def _cached(key: str, load):
    ttl = current_app.config["CODE_CACHE_SECONDS"]
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    value = load(key)
    if ttl > 0:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = (now + ttl, value)
    return value


def default_destination() -> str | None:
    """Where an unknown code sends people: the default program's destination, if any."""
    return _cached("", _load_default)


def forget(code: str | None = None) -> None:
    """Drop one code from this process's cache, or everything when no code is given."""
    if code is None:
        _cache.clear()
    else:
        _cache.pop(code.lower(), None)


def _load_default(_key: str) -> str | None:
    program = db.session.scalar(select(Program).filter_by(is_default=True))
    db.session.rollback()
    if program and is_allowed_destination(program.destination_url, program.allowed_domain):
        return program.destination_url
    return None


def _load(key: str) -> CodeEntry | None:
    row = db.session.execute(
        select(ReferralCode, Program)
        .join(Program, Program.id == ReferralCode.program_id)
        .where(ReferralCode.code_key == key, ReferralCode.active.is_(True))
    ).first()
    db.session.rollback()  # end the read transaction; the redirect holds no connection
    if row is None:
        return None
    code, program = row
    destination = program.destination_url
    if not is_allowed_destination(destination, program.allowed_domain):
        destination = None
    # As a URI (the Location header's form), cut once here rather than on every click.
    parts = split_at_query_param(iri_to_uri(destination), "visitor_id") if destination else None
    return CodeEntry(code.id, code.code, program.id, code.customer_id, destination,
                     program.window_days, parts)
