"""Fraud signals: reasons to look twice at a referral, in plain words.

Signals are computed when a signup and a purchase are recorded:

- self_email: the friend's email is the referrer's own once the provider's ignored parts
  (letter case, Gmail's dots, +tags, Yahoo's -keywords) are dropped;
- self_visitor: the friend used a browser the referrer signed in from (a KnownVisitor);
- self_ip: the friend signed up from the network the referrer signed in from in the last day;
- self_card: the friend paid with a card the referrer paid with (Stripe's card fingerprint);
- disposable_email: the friend's email is at a disposable email service;
- velocity: more signups on one code within an hour than the program allows.

Signals flag, they do not block: a flagged referral's unpaid rewards wait `on_hold` (out of
payouts) until a coordinator clears the signal (the rewards go back where they were) or
rejects it (the rewards are rejected, and so are the referral's later ones). A signal is
unique per (referral, kind, conversion_key), so computing it again adds nothing. A purchase
with an open card dispute (Stripe) keeps its rewards on hold even once its signals are
cleared; the dispute's close releases them.

Nothing here commits except `clear` and `reject`, the coordinator's actions.
"""

from datetime import datetime, timedelta

from disposable_email_domains import blocklist
from sqlalchemy import exists, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from rewards.audit import log as audit
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.models import (
    Account,
    Conversion,
    Customer,
    Dispute,
    FraudSignal,
    KnownVisitor,
    Program,
    Referral,
    ReferralCode,
    Reward,
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
HOLDABLE = ("pending", "available")
AUDITED = ("status", "resolved_by", "resolved_at")

# Mail providers that deliver differently written addresses to one mailbox. Each entry:
# (the domain the provider's aliases fold to, whether dots in the name are ignored, the
# separator after which a tag is ignored). Only providers documented to behave so are
# listed; for every other domain only letter case is folded.
#   Gmail: dots and +tags ignored; googlemail.com is the same mailbox as gmail.com.
#   Outlook.com / Hotmail / Live / MSN, iCloud (icloud.com, me.com, mac.com), Fastmail,
#   Proton: +tags ignored ("plus addressing").
#   Yahoo: disposable addresses are "nickname-keyword"; the keyword is dropped.
_GMAIL = ("gmail.com", True, "+")
PROVIDERS: dict[str, tuple[str, bool, str]] = {
    "gmail.com": _GMAIL,
    "googlemail.com": _GMAIL,
    **{domain: (domain, False, "+") for domain in (
        "outlook.com", "hotmail.com", "live.com", "msn.com",
        "icloud.com", "me.com", "mac.com",
        "fastmail.com", "fastmail.fm",
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
    )},
    "yahoo.com": ("yahoo.com", False, "-"),
}


def _split(email: str) -> tuple[str, str] | None:
    email = (email or "").strip().lower()
    if email.count("@") < 1:
        return None
    local, domain = email.rsplit("@", 1)
    return local, domain


def canonical_email(email: str) -> str:
    """The mailbox an address reaches: `J.Doe+ref@GMail.com` -> `jdoe@gmail.com`.

    Letter case is always folded; dots and tags only where the provider ignores them
    (see PROVIDERS).
    """
    parts = _split(email)
    if parts is None:
        return (email or "").strip().lower()
    local, domain = parts
    rule = PROVIDERS.get(domain)
    if rule is None:
        return f"{local}@{domain}"
    domain, ignores_dots, separator = rule
    local = local.split(separator, 1)[0] or local
    if ignores_dots:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def _ignored_parts(email: str) -> str:
    """What canonical_email ignored for this address's provider, in words."""
    parts = _split(email)
    rule = PROVIDERS.get(parts[1]) if parts else None
    if rule is None:
        return "letter case is"
    if rule[1]:
        return "dots and +tags are"
    return "-keywords are" if rule[2] == "-" else "+tags are"


def disposable_domain(email: str | None) -> str | None:
    """The disposable email service the address is at (a subdomain counts), or None."""
    parts = _split(email or "")
    if parts is None:
        return None
    labels = parts[1].split(".")
    for start in range(len(labels) - 1):
        domain = ".".join(labels[start:])
        if domain in blocklist:
            return domain
    return None


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


# --- adding signals ---------------------------------------------------------------------

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
                f"{_ignored_parts(email)} ignored.")))
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
    hold_referrals([signal.referral_id for signal in signals
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


# --- holding and releasing rewards --------------------------------------------------------

def _lock_referrer(referral: Referral) -> None:
    """Serialise with reward computation for this referrer (which locks the referrer's
    balance first), so a reward computed at the same time either sees the signal or is
    seen by the hold."""
    currencies = {db.session.scalar(select(Program.currency).filter_by(id=referral.program_id))}
    currencies |= set(db.session.scalars(
        select(Conversion.currency).filter_by(referral_id=referral.id).distinct()))
    for currency in sorted(c for c in currencies if c):
        ledger.lock_balance(referral.referrer_id, currency)


def _lock_referrers(referrals: list[Referral]) -> None:
    """`_lock_referrer` for several referrals: each referrer's balance in the program's
    currency and in those of the referrals' purchases, read in one query, locked in order."""
    program_ids = {referral.program_id for referral in referrals}
    referrer_of = {referral.id: referral.referrer_id for referral in referrals}
    currency_of = dict(db.session.execute(
        select(Program.id, Program.currency).where(Program.id.in_(program_ids))).all())
    locks = {(referral.referrer_id, currency_of.get(referral.program_id))
             for referral in referrals}
    locks |= {(referrer_of[referral_id], currency) for referral_id, currency in
              db.session.execute(select(Conversion.referral_id, Conversion.currency)
                                 .where(Conversion.referral_id.in_(list(referrer_of)))
                                 .distinct())}
    for referrer_id, currency in sorted(lock for lock in locks if lock[1]):
        ledger.lock_balance(referrer_id, currency)


def _rewards_of_referral(referral_id: int, statuses: tuple[str, ...]) -> list[Reward]:
    return list(db.session.scalars(
        select(Reward).join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Conversion.referral_id == referral_id, Reward.status.in_(statuses))
        .order_by(Reward.id)))


def _verdicts(referral_ids: list[int]) -> dict[int, str]:
    """`_verdict` of each referral that has one, in one query."""
    found: dict[int, set[str]] = {}
    for referral_id, status in db.session.execute(
            select(FraudSignal.referral_id, FraudSignal.status)
            .where(FraudSignal.referral_id.in_(referral_ids),
                   FraudSignal.status.in_(("open", "rejected"))).distinct()):
        found.setdefault(referral_id, set()).add(status)
    return {referral_id: "rejected" if "rejected" in statuses else "open"
            for referral_id, statuses in found.items()}


def _verdict(referral_id: int) -> str | None:
    """'rejected' when a coordinator rejected one of the referral's signals, 'open' when
    one awaits review, else None."""
    statuses = set(db.session.scalars(
        select(FraudSignal.status).where(FraudSignal.referral_id == referral_id,
                                         FraudSignal.status.in_(("open", "rejected")))
        .distinct()))
    return "rejected" if "rejected" in statuses else ("open" if statuses else None)


def has_open_dispute(conversion_id: int) -> bool:
    """Whether a card dispute on the purchase is open (its rewards stay on hold)."""
    return db.session.scalar(select(Dispute.id).where(
        Dispute.conversion_id == conversion_id, Dispute.status == "open").limit(1)) is not None


def _apply(rewards: list[Reward], verdict: str | None) -> int:
    return _apply_each([(reward, verdict) for reward in rewards])


def _apply_each(verdicts: list[tuple[Reward, str | None]]) -> int:
    """Each reward moved as its verdict says (rejected, or on hold), in order."""
    rejected = [(reward, "rejected", (*HOLDABLE, "on_hold"), {"held_from": None})
                for reward, verdict in verdicts if verdict == "rejected"]
    held = [reward for reward, verdict in verdicts if verdict == "open"]
    return ledger.move_many(rejected) + ledger.hold_many(held)


def purchase_verdict(conversion: Conversion) -> str | None:
    """What a referred purchase's unpaid rewards are owed, in one query: 'rejected' when a
    coordinator rejected one of its referral's signals, 'open' when one awaits review or a
    card dispute on the purchase is open (it holds them like a signal), else None."""
    if conversion.referral_id is None:
        return None
    return verdict_from(*db.session.execute(select(*verdict_columns(conversion))).one())


def verdict_columns(conversion: Conversion) -> tuple:
    """(a rejected signal, an open signal, an open dispute) as columns for a query."""
    signals = (FraudSignal.referral_id == conversion.referral_id,)
    return (exists().where(*signals, FraudSignal.status == "rejected"),
            exists().where(*signals, FraudSignal.status == "open"),
            exists().where(Dispute.conversion_id == conversion.id, Dispute.status == "open"))


def verdict_from(rejected: bool, flagged: bool, disputed: bool) -> str | None:
    return "rejected" if rejected else ("open" if flagged or disputed else None)


def hold_flagged(conversion_id: int) -> int:
    """After a purchase's rewards are computed: when its referral has an open signal, its
    pending and available rewards go on hold (when a signal was rejected, they are
    rejected). In the caller's transaction. Returns how many rewards moved."""
    conversion = db.session.get(Conversion, conversion_id)
    if conversion is None or conversion.referral_id is None:
        return 0
    verdict = purchase_verdict(conversion)
    if verdict is None:
        return 0
    rewards = db.session.scalars(
        select(Reward).where(Reward.conversion_id == conversion_id,
                             Reward.status.in_(HOLDABLE)).order_by(Reward.id)).all()
    return _apply(list(rewards), verdict)


def hold_referral(referral_id: int) -> int:
    """A signal raised after rewards exist: the referral's pending and available rewards
    (of every purchase) go on hold. In the caller's transaction. Returns how many moved."""
    return hold_referrals([referral_id])


def hold_referrals(referral_ids: list[int]) -> int:
    """`hold_referral` for several referrals (a velocity burst flags a code's referrals at
    once) with the reads shared: their referrers' balances are locked first (in order of
    referrer and currency), then their rewards and their verdicts are read in one query
    each, and the rewards move. In the caller's transaction. Returns how many moved."""
    ids = list(dict.fromkeys(referral_ids))
    if not ids:
        return 0
    referrals = [db.session.get(Referral, ids[0])] if len(ids) == 1 else list(
        db.session.scalars(select(Referral).where(Referral.id.in_(ids))))
    referrals = [referral for referral in referrals if referral is not None]
    if not referrals:
        return 0
    _lock_referrers(referrals)
    ids = [referral.id for referral in referrals]
    rows = db.session.execute(
        select(Reward, Conversion.referral_id)
        .join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Conversion.referral_id.in_(ids), Reward.status.in_(HOLDABLE))
        .order_by(Reward.id)).all()
    if not rows:
        return 0
    verdicts = _verdicts(ids)
    return _apply_each([(reward, verdicts.get(referral_id)) for reward, referral_id in rows])


# --- the coordinator's decisions ----------------------------------------------------------

def _resolve(signal_id: int, account: Account, to: str) -> tuple[FraudSignal, dict]:
    signal = db.session.get(FraudSignal, signal_id)
    if signal is None:
        raise NotFound(f"No fraud signal #{signal_id}.")
    before = audit.snapshot(signal, *AUDITED)
    _lock_referrer(signal.referral)
    changed = db.session.execute(
        update(FraudSignal).where(FraudSignal.id == signal_id, FraudSignal.status == "open")
        .values(status=to, resolved_by=account.id, resolved_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        db.session.rollback()
        current = db.session.get(FraudSignal, signal_id)
        raise Conflict(f"Fraud signal #{signal_id} is already {current.status}.")
    db.session.expire(signal)
    return signal, before


def clear(signal_id: int, account: Account) -> FraudSignal:
    """The coordinator finds the signal harmless. When the referral has no open (or
    rejected) signal left, its held rewards go back where they were."""
    signal, before = _resolve(signal_id, account, "cleared")
    released = 0
    if _verdict(signal.referral_id) is None:
        now = utcnow()
        for reward in _rewards_of_referral(signal.referral_id, ("on_hold",)):
            if has_open_dispute(reward.conversion_id):
                continue  # held for the card dispute until Stripe closes it
            back = reward.held_from or "pending"
            if back == "pending" and reward.available_at <= now:
                back = "available"  # its hold window ended while it was held
            released += ledger.move(reward, back, from_="on_hold", held_from=None)
    audit.record(account, "clear_signal", f"signal:{signal.id}", before=before,
                 after=audit.snapshot(signal, *AUDITED) | {"rewards_released": released},
                 note=signal.detail)
    db.session.commit()
    return signal


def reject(signal_id: int, account: Account, reason: str) -> FraudSignal:
    """The coordinator finds the referral fraudulent: its unpaid rewards (held, pending or
    available) are rejected, and so are the ones its later purchases earn."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give a reason for the rejection.", field="reason")
    signal, before = _resolve(signal_id, account, "rejected")
    rejected = _apply(_rewards_of_referral(signal.referral_id, (*HOLDABLE, "on_hold")),
                      "rejected")
    audit.record(account, "reject_signal", f"signal:{signal.id}", before=before,
                 after=audit.snapshot(signal, *AUDITED) | {"reason": reason[:400],
                                                           "rewards_rejected": rejected},
                 note=f"{signal.detail} Rejected: {reason}")
    db.session.commit()
    return signal


# --- reading, for the coordinator's pages -------------------------------------------------

def signals_for_referral(referral_id: int) -> list[FraudSignal]:
    """Every signal of a referral, open or resolved, oldest first."""
    return list(db.session.scalars(
        select(FraudSignal).filter_by(referral_id=referral_id).order_by(FraudSignal.id)))


def open_signals_for_payout(payout_id: int) -> list[FraudSignal]:
    """Open signals on the referrals whose rewards are in the payout (a signal raised
    after the payout was proposed does not move its rewards: the coordinator sees it)."""
    referrals = (select(Conversion.referral_id)
                 .join(Reward, Reward.conversion_id == Conversion.id)
                 .where(Reward.payout_id == payout_id, Conversion.referral_id.is_not(None)))
    return list(db.session.scalars(
        select(FraudSignal).where(FraudSignal.referral_id.in_(referrals),
                                  FraudSignal.status == "open")
        .order_by(FraudSignal.referral_id, FraudSignal.id)))
