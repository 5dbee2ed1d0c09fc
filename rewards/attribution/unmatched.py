"""Purchases that no link of the attribution chain tied to a referrer: the staff inbox.

Each one is listed with the reason no rule matched and with suggested matches among the
referred friends (the same email domain and a similar name, or a signup in the hours
before the purchase). Staff attribute one by hand, with a note that goes to the audit
log; the rewards then follow as for any attributed purchase.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from rewards import background
from rewards.analytics.rollups import touch_purchase
from rewards.attribution.resolver import is_self_referral
from rewards.audit.log import record, snapshot
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.models import Account, Conversion, Customer, Program, Referral, ReferralCode, Signup

# Addresses at these domains say nothing about who knows whom.
WEBMAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com",
    "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com", "icloud.com",
    "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de",
    "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "zoho.com", "fastmail.com",
    "hey.com", "qq.com", "163.com", "orange.fr", "free.fr", "laposte.net",
})
SIMILAR_NAME = 0.6
RECENT_SIGNUP = timedelta(hours=6)
MAX_SUGGESTIONS = 5
_CANDIDATES = 200
CONVERSION_COLUMNS = ("referrer_id", "referral_id", "matched_by", "matched_via", "reason",
                      "processed_at")


@dataclass
class Suggestion:
    """A referred friend who might be the buyer, so the buyer's likely referrer."""

    friend: Customer
    referrer: Customer
    signed_up_at: datetime | None
    why: list[str] = field(default_factory=list)
    score: float = 0.0

    @property
    def reason(self) -> str:
        return "; ".join(self.why)


def unmatched(program_id: int | None = None, limit: int = 50) -> list[Conversion]:
    """Purchases without a referrer, newest first (each carries its `reason`)."""
    stmt = (select(Conversion).where(Conversion.referrer_id.is_(None))
            .order_by(Conversion.occurred_at.desc(), Conversion.id.desc()).limit(limit))
    if program_id is not None:
        stmt = stmt.where(Conversion.program_id == program_id)
    return list(db.session.scalars(stmt))


def count_unmatched(program_id: int | None = None) -> int:
    stmt = select(func.count(Conversion.id)).where(Conversion.referrer_id.is_(None))
    if program_id is not None:
        stmt = stmt.where(Conversion.program_id == program_id)
    return db.session.scalar(stmt) or 0


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def _label(customer: Customer) -> str:
    """What to compare of a customer: the name, else the email's local part."""
    if customer.name and customer.name.strip():
        return " ".join(customer.name.lower().split())
    if customer.email and "@" in customer.email:
        return customer.email.rsplit("@", 1)[0].lower().replace(".", " ").replace("_", " ")
    return ""


def name_similarity(a: Customer, b: Customer) -> float:
    left, right = _label(a), _label(b)
    if not left or not right:
        return 0.0
    return SequenceMatcher(None, left, right).ratio()


def _ago(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    hours = minutes // 60
    return f"{hours} hour{'' if hours == 1 else 's'}"


def suggestions(conversion: Conversion) -> list[Suggestion]:
    """Referred friends who may be this buyer under another address, best first."""
    buyer = db.session.get(Customer, conversion.customer_id)
    found: dict[int, Suggestion] = {}

    def add(friend: Customer, referral: Referral, signed_up_at, why: str, score: float):
        if friend.id == buyer.id or referral.referrer_id == buyer.id:
            return
        suggestion = found.get(friend.id)
        if suggestion is None:
            referrer = db.session.get(Customer, referral.referrer_id)
            suggestion = found[friend.id] = Suggestion(friend, referrer, signed_up_at)
        suggestion.why.append(why)
        suggestion.score += score

    referred = (
        select(Customer, Referral, Signup.created_at)
        .join(Referral, Referral.friend_id == Customer.id)
        .outerjoin(Signup, Signup.customer_id == Customer.id)
        .where(Customer.program_id == conversion.program_id, Customer.id != buyer.id)
    )
    domain = email_domain(buyer.email)
    if domain and domain not in WEBMAIL:
        rows = db.session.execute(
            referred.where(Customer.email.like(f"%@{domain}"))
            .order_by(Customer.id.desc()).limit(_CANDIDATES)
        ).all()
        for friend, referral, signed_up_at in rows:
            ratio = name_similarity(buyer, friend)
            if ratio >= SIMILAR_NAME:
                add(friend, referral, signed_up_at,
                    f"same email domain ({domain}) and a similar name ({ratio:.0%} alike)",
                    1 + ratio)

    at = conversion.occurred_at
    rows = db.session.execute(
        referred.where(Signup.created_at <= at, Signup.created_at >= at - RECENT_SIGNUP)
        .order_by(Signup.created_at.desc()).limit(_CANDIDATES)
    ).all()
    for friend, referral, signed_up_at in rows:
        gap = at - signed_up_at
        add(friend, referral, signed_up_at,
            f"signed up {_ago(gap)} before the purchase",
            1 - gap / RECENT_SIGNUP)

    return sorted(found.values(), key=lambda s: (-s.score, -s.friend.id))[:MAX_SUGGESTIONS]


def _who(customer: Customer) -> str:
    parts = [customer.name or customer.external_id or f"customer #{customer.id}"]
    if customer.email:
        from rewards.privacy import mask_email

        parts.append(f"({mask_email(customer.email)})")
    return " ".join(parts)


def find_referrer(program: Program, text: str) -> Customer:
    """The customer a referral code (any case) or a name, email or external id names.

    Exactly one customer must match; several is an error naming them, so staff can be
    more precise."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("Give the referrer's code, name or email.", field="referrer")
    code = db.session.scalar(
        select(ReferralCode).filter_by(code_key=text.lower()[:32], program_id=program.id,
                                       active=True))
    if code is not None:
        return db.session.get(Customer, code.customer_id)
    like = f"%{text.lower().replace('%', '').replace('_', '')}%"
    matches = db.session.scalars(
        select(Customer).where(
            Customer.program_id == program.id,
            or_(func.lower(Customer.name).like(like), func.lower(Customer.email).like(like),
                Customer.external_id == text))
        .order_by(Customer.id).limit(6)
    ).all()
    if not matches:
        raise NotFound(f"No code or customer in {program.name} matches '{text}'.",
                       field="referrer")
    if len(matches) > 1:
        listed = ", ".join(_who(c) for c in matches[:5])
        more = " and more" if len(matches) > 5 else ""
        raise ServiceError(
            f"Several customers match '{text}': {listed}{more}. Give their referral code "
            "or more of the name or email.", field="referrer", code="ambiguous")
    return matches[0]


def attribute_by_hand(conversion_id: int, *, referrer: Customer, note: str,
                      account: Account | None) -> Conversion:
    """Tie an unmatched purchase to `referrer`, audited with the note; rewards follow.

    Refuses a purchase that already has a referrer and a referrer who is the buyer
    (Conflict). The buyer's referral is made when they have none (a friend is referred
    once: a buyer referred by someone else is refused). The conversion is updated with
    a compare-and-set on `referrer_id IS NULL`, so of two staff racing one wins."""
    note = (note or "").strip()
    if not note:
        raise ServiceError("Add a note saying why: it goes to the audit log.", field="note")
    conversion = db.session.get(Conversion, conversion_id)
    if conversion is None:
        raise NotFound(f"No purchase #{conversion_id}.")
    if conversion.referrer_id is not None:
        raise Conflict(f"Purchase {conversion.order_id} is already attributed.")
    if referrer.program_id != conversion.program_id:
        raise ServiceError("The referrer is in another program.", field="referrer")
    buyer = db.session.get(Customer, conversion.customer_id)
    if is_self_referral(referrer, buyer):
        raise Conflict("The referrer is the buyer: a customer cannot refer themselves.",
                       field="referrer")
    reason = f"Attributed by staff: {note}"[:300]
    before = snapshot(conversion, *CONVERSION_COLUMNS)
    referral = db.session.scalar(select(Referral).filter_by(friend_id=buyer.id))
    if referral is not None and referral.referrer_id != referrer.id:
        raise Conflict("The buyer was already referred by another customer; a friend is "
                       "referred once.", field="referrer")
    try:
        if referral is None:
            signup_at = db.session.scalar(
                select(Signup.created_at).filter_by(customer_id=buyer.id))
            referral = Referral(
                program_id=conversion.program_id, referrer_id=referrer.id,
                friend_id=buyer.id, matched_by="staff", reason=reason,
                created_at=min(signup_at, conversion.occurred_at) if signup_at
                else conversion.occurred_at)
            db.session.add(referral)
            db.session.flush()
        claimed = db.session.execute(
            update(Conversion)
            .where(Conversion.id == conversion.id, Conversion.referrer_id.is_(None))
            .values(referrer_id=referrer.id, referral_id=referral.id, matched_by="staff",
                    matched_via="staff", reason=reason, processed_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            raise Conflict(f"Purchase {conversion.order_id} was attributed meanwhile.")
        db.session.refresh(conversion)
        touch_purchase(conversion)
        from rewards.fraud.signals import signals_for_purchase

        signals_for_purchase(conversion)
        record(account, "attribute_by_hand", f"conversion:{conversion.id}", before=before,
               after=snapshot(conversion, *CONVERSION_COLUMNS), note=note)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The purchase or the buyer's referral changed meanwhile; "
                       "reload and try again.") from None
    except ServiceError:
        db.session.rollback()
        raise
    background.enqueue("rewards.jobs.process_conversion", conversion.id)
    return conversion
