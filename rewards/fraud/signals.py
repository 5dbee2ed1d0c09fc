"""Fraud signals: reasons to look twice at a referral, in plain words, computed when a
signup and a purchase are recorded (`KIND_NAMES`). Signals flag, they do not block: a flagged
referral's unpaid rewards wait on hold (`rewards.ledger.holds`) until a coordinator decides
(`rewards.fraud.review`). A signal is unique per (referral, kind, conversion_key), so
computing it again adds nothing. Nothing here commits.
"""

from datetime import datetime, timedelta

from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite

from rewards.extensions import db
from rewards.fraud.emails import canonical_email, disposable_domain, ignored_parts
from rewards.ledger import holds
from rewards.models import (
    Account,
    Conversion,
    Customer,
    FraudSignal,
    KnownVisitor,
    Program,
    Referral,
    ReferralCode,
    utcnow,
)
from rewards.privacy import mask_email

KINDS = ("self_email", "self_visitor", "self_ip", "self_card", "disposable_email", "velocity")
# What each kind means, for a page's legend.
KIND_NAMES = {
    "self_email": "Referrer's own email",
    "self_visitor": "Referrer's own browser",
    "self_ip": "Referrer's own network",
    "self_card": "Referrer's own card",
    "disposable_email": "Disposable email",
    "velocity": "Too many signups on one code",
}
SAME_NETWORK_WITHIN = timedelta(hours=24)
VELOCITY_WINDOW = timedelta(hours=1)
_VELOCITY_LOCKS = 0x76656C6F  # "velo": the advisory lock space of the codes' burst counts


def _emails_of(*customer_ids: int) -> dict[int, list[str]]:
    """Each customer's email and their login's, lower case, without repeats (the customer's
    own first): one query for all of them."""
    rows = db.session.execute(
        select(Customer.id, Customer.email, literal(0).label("login"))
        .where(Customer.id.in_(customer_ids))
        .union_all(select(Account.customer_id, Account.email, literal(1))
                   .where(Account.customer_id.in_(customer_ids)))).all()
    found: dict[int, list[str]] = {customer_id: [] for customer_id in customer_ids}
    for customer_id, email, _login in sorted(rows, key=lambda row: (row[0], row[2], row[1] or "")):
        if email and email.lower() not in found[customer_id]:
            found[customer_id].append(email.lower())
    return found


def _add(referral: Referral, kind: str, detail: str,
         conversion: Conversion | None = None) -> FraudSignal | None:
    """Insert the signal unless it exists (insert ... on conflict do nothing). Flushed,
    never committed. Returns the new row, or None when it was already there."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_id = db.session.execute(
        insert(FraudSignal)
        .values(program_id=referral.program_id, referral_id=referral.id,
                conversion_id=conversion.id if conversion else None,
                conversion_key=conversion.id if conversion else 0, kind=kind,
                detail=detail[:400], status="open", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["referral_id", "kind", "conversion_key"])
        .returning(FraudSignal.id)
    ).scalar()
    return db.session.get(FraudSignal, new_id) if new_id is not None else None


def _referral_signals(referral: Referral) -> list[FraudSignal]:
    """The signals about who the friend is: their email, and the code's velocity."""
    added = []
    emails = _emails_of(referral.referrer_id, referral.friend_id)
    referrer_emails = {canonical_email(e): e for e in emails[referral.referrer_id]}
    friend_emails = emails[referral.friend_id]
    for email in friend_emails:
        if canonical_email(email) in referrer_emails:
            added.append(_add(referral, "self_email", (
                f"The friend's email {mask_email(email)} is the referrer's own address once "
                f"{ignored_parts(email)} ignored.")))
            break
    for email in friend_emails:
        domain = disposable_domain(email)
        if domain:
            added.append(_add(referral, "disposable_email",
                              f"The friend's email is at {domain}, a disposable email service."))
            break
    added += _velocity(referral)
    return [signal for signal in added if signal is not None]


def _velocity(referral: Referral) -> list[FraudSignal | None]:
    """More referrals on the referral's code within the hour up to it (or up to a later
    referral in the hour after it) than the program allows: every referral in that hour is
    flagged, the burst being the evidence."""
    if referral.code_id is None:
        return []
    _count_alone(referral.code_id)
    program = db.session.get(Program, referral.program_id)
    # The code's referrals (the (code_id, created_at) index); a code is in one program.
    on_code = (Referral.code_id == referral.code_id,)
    # The hour up to this referral, or up to a later one on the code that counted before
    # this one was committed (racing signups are stamped in one order, counted in another).
    later = db.session.scalar(select(func.max(Referral.created_at)).where(
        *on_code, Referral.created_at > referral.created_at,
        Referral.created_at <= referral.created_at + VELOCITY_WINDOW))
    end = max(referral.created_at, later) if later else referral.created_at
    window = (*on_code, Referral.created_at > end - VELOCITY_WINDOW, Referral.created_at <= end)
    count = db.session.scalar(select(func.count(Referral.id)).where(*window))
    if count <= program.velocity_limit:
        return []
    code = db.session.scalar(select(ReferralCode.code).filter_by(id=referral.code_id))
    detail = (f"{count} signups on code {code} within an hour; the program allows "
              f"{program.velocity_limit}.")
    # One statement for the burst, inserting only the referrals not flagged yet (a later
    # signup in the same hour adds its own signal, not one attempt per earlier referral).
    flagged = select(FraudSignal.id).where(FraudSignal.referral_id == Referral.id,
                                           FraudSignal.kind == "velocity",
                                           FraudSignal.conversion_key == 0)
    burst = select(
        Referral.program_id, Referral.id, literal(0), literal("velocity"),
        literal(detail[:400]), literal("open"),
        literal(utcnow(), FraudSignal.__table__.c.created_at.type),
    ).where(*window, ~flagged.exists()).order_by(Referral.id)
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = FraudSignal.__table__
    new_ids = db.session.scalars(
        insert(table)
        .from_select(["program_id", "referral_id", "conversion_key", "kind", "detail",
                      "status", "created_at"], burst)
        .on_conflict_do_nothing(index_elements=["referral_id", "kind", "conversion_key"])
        .returning(table.c.id)).all()
    if not new_ids:
        return []
    return list(db.session.scalars(
        select(FraudSignal).where(FraudSignal.id.in_(new_ids)).order_by(FraudSignal.id)))


def _count_alone(code_id: int) -> None:
    """Take the code's burst count in turn, until this transaction ends.

    Each referral is inserted before its count. Counting in turn, the last racer's count
    comes after the others committed, so it sees the whole burst and flags it; without
    the turn (PostgreSQL, read committed) racing signups could each count only themselves.
    SQLite already has one writer at a time."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:space, :code)"),
                           {"space": _VELOCITY_LOCKS, "code": code_id})


def signals_for_signup(referral: Referral, *, visitor_id: str | None, ip_hash: str | None,
                       at: datetime | None = None) -> list[FraudSignal]:
    """Signals about a friend's signup (flushed, in the caller's transaction); the
    referral's unpaid rewards, if any exist yet, are held. Returns the new signals."""
    at = at or utcnow()
    added = _referral_signals(referral)
    known = select(KnownVisitor.id).where(KnownVisitor.customer_id == referral.referrer_id)
    if visitor_id and db.session.scalar(known.where(KnownVisitor.visitor_id == visitor_id)):
        added.append(_add(referral, "self_visitor",
                          "The friend signed up from the same browser the referrer uses."))
    if ip_hash and db.session.scalar(known.where(
            KnownVisitor.ip_hash == ip_hash,
            KnownVisitor.seen_at >= at - SAME_NETWORK_WITHIN)):
        added.append(_add(referral, "self_ip", (
            "The friend signed up from the referrer's network (same IP) within a day of the "
            "referrer's sign-in.")))
    return _held_for([signal for signal in added if signal is not None])


def signals_for_purchase(conversion: Conversion, *, card_fingerprint: str | None = None,
                         visitor_id: str | None = None,
                         referral_is_new: bool = False) -> list[FraudSignal]:
    """Signals about a purchase (flushed, in the caller's transaction): the referral's own
    signals when it was made at this purchase, the same card as the referrer's, the
    referrer's browser; and, when the buyer is a referrer, their friends' purchases with
    this card. Flagged referrals' unpaid rewards are held. Returns the new signals.

    referral_is_new: the purchase's referral was added in the caller's transaction, so no
    reward of it exists to hold (its purchase's rewards are computed after the commit, and
    `hold_flagged` holds them then): it is not held here, the other referrals flagged are."""
    if card_fingerprint and not conversion.card_fingerprint:
        conversion.card_fingerprint = card_fingerprint
        db.session.flush()
    fingerprint = conversion.card_fingerprint
    added: list[FraudSignal | None] = []
    referral = db.session.get(Referral, conversion.referral_id) if conversion.referral_id \
        else None
    if referral is not None:
        added += _referral_signals(referral)
        if fingerprint and db.session.scalar(select(Conversion.id).where(
                Conversion.customer_id == referral.referrer_id,
                Conversion.card_fingerprint == fingerprint).limit(1)):
            added.append(_add(referral, "self_card",
                              "The friend paid with the same card as the referrer.", conversion))
        if visitor_id and db.session.scalar(select(KnownVisitor.id).where(
                KnownVisitor.customer_id == referral.referrer_id,
                KnownVisitor.visitor_id == visitor_id)):
            added.append(_add(referral, "self_visitor",
                              "The friend bought from the same browser the referrer uses.",
                              conversion))
    if fingerprint:
        # The buyer as a referrer: a friend who paid earlier with this same card.
        earlier = db.session.execute(
            select(Referral, Conversion)
            .join(Conversion, Conversion.customer_id == Referral.friend_id)
            .where(Referral.referrer_id == conversion.customer_id,
                   Conversion.card_fingerprint == fingerprint, Conversion.id != conversion.id)
            .order_by(Conversion.id)).all()
        for friends_referral, friends_purchase in earlier:
            added.append(_add(friends_referral, "self_card",
                              "The friend paid with the same card as the referrer.",
                              friends_purchase))
    skip = {referral.id} if referral is not None and referral_is_new else set()
    return _held_for([signal for signal in added if signal is not None], skip=skip)


def _held_for(signals: list[FraudSignal], skip: set[int] = frozenset()) -> list[FraudSignal]:
    """Hold the unpaid rewards of the referrals flagged, except `skip` (referrals known to
    have no rewards yet)."""
    holds.hold_referrals([signal.referral_id for signal in signals
                          if signal.referral_id not in skip])
    return signals


def record_known_visitor(customer_id: int, visitor_id: str, ip_hash: str | None) -> None:
    """Remember a browser (and network) a signed-in customer uses: insert, or update when
    and from where it was last seen. Flushed, never committed."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    statement = insert(KnownVisitor).values(customer_id=customer_id, visitor_id=visitor_id,
                                            ip_hash=ip_hash, seen_at=now)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["customer_id", "visitor_id"],
        set_={"seen_at": now, "ip_hash": ip_hash}))


def remember_browser(customer_id: int, visitor_id: str, ip_hash: str | None) -> None:
    """`record_known_visitor` for a customer signing in, committed."""
    record_known_visitor(customer_id, visitor_id, ip_hash)
    db.session.commit()
