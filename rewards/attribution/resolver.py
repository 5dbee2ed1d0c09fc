"""Who referred a friend, and why: the attribution chain with a one-sentence reason.

The chain, in order: a referral code given explicitly; the visitor id's clicks within
the program's window (first or last click, as the program says); the friend's earlier
attributed signup. A friend is referred once: when they already have a referral, it
stands. Self-referral (the same customer, or the same email ignoring case) never counts.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from rewards.extensions import db
from rewards.models import Account, Click, Customer, Program, Referral, ReferralCode

NO_MATCH = "no click, code or signup matched."


@dataclass
class Attribution:
    referrer: Customer | None = None
    matched_by: str | None = None
    code: ReferralCode | None = None
    click: Click | None = None
    referral: Referral | None = None
    reason: str = NO_MATCH
    refusals: list[str] = field(default_factory=list)

    @property
    def attributed(self) -> bool:
        return self.referrer is not None


def is_self_referral(referrer: Customer, friend: Customer, friend_email: str | None = None,
                     *, friend_is_new: bool = False) -> bool:
    """The same customer, or a shared email (the customers' own or their logins', ignoring
    case). The logins' emails of both are read in one query; a friend added in the
    caller's transaction has no login yet, so only the referrer's are read then."""
    if referrer.id == friend.id:
        return True
    referrer_emails = {referrer.email.lower()} if referrer.email else set()
    friend_emails = {email.lower() for email in (friend.email, friend_email) if email}
    ids = [referrer.id] if friend_is_new else [referrer.id, friend.id]
    for customer_id, email in db.session.execute(
            select(Account.customer_id, Account.email).where(Account.customer_id.in_(ids))):
        if email:
            (referrer_emails if customer_id == referrer.id else friend_emails).add(email.lower())
    return bool(referrer_emails & friend_emails)


def _who(customer: Customer) -> str:
    if customer.external_id:
        return f"customer {customer.external_id}"
    return f"customer #{customer.id}"


def _days(delta: timedelta) -> str:
    days = delta.days
    return "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")


def _by_code(program, friend, email, code_text, friend_is_new=False):
    code = db.session.scalar(
        select(ReferralCode).filter_by(code_key=code_text.strip().lower(), active=True)
        .options(joinedload(ReferralCode.customer))  # the referrer, in the same query
    )
    if code is None or code.program_id != program.id:
        return None, f"the referral code {code_text} does not exist in this program."
    if is_self_referral(code.customer, friend, email, friend_is_new=friend_is_new):
        return None, f"the referral code {code.code} belongs to the buyer."
    return Attribution(
        referrer=code.customer, matched_by="code", code=code,
        reason=f"the referral code {code.code} of {_who(code.customer)} was given.",
    ), None


def _by_visitor(program: Program, friend, email, visitor_id, at: datetime,
                friend_is_new: bool = False):
    clicks = db.session.scalars(
        select(Click)
        .filter_by(program_id=program.id, visitor_id=visitor_id)
        .where(Click.created_at <= at)
        .order_by(Click.created_at.desc(), Click.id.desc())
        .limit(200)
    ).all()
    if not clicks:
        return None, None
    own = [c for c in clicks if c.referrer_id == friend.id]
    clicks = [c for c in clicks if c.referrer_id != friend.id]
    if not clicks:
        return None, f"the visitor's clicks ({len(own)}) were all on the buyer's own link."
    since = at - timedelta(days=program.window_days)
    in_window = [c for c in clicks if c.created_at >= since]
    if not in_window:
        return None, (
            f"the last click was {(at - clicks[0].created_at).days} days ago "
            f"and the window is {program.window_days} days."
        )
    click = in_window[-1] if program.attribution == "first" else in_window[0]
    referrer = db.session.get(Customer, click.referrer_id)
    if is_self_referral(referrer, friend, email, friend_is_new=friend_is_new):
        return None, "the clicked link belongs to a customer with the buyer's email."
    code = db.session.get(ReferralCode, click.code_id)
    which = "first" if program.attribution == "first" else "last"
    return Attribution(
        referrer=referrer, matched_by="visitor", code=code, click=click,
        reason=(
            f"the visitor's {which} click on {code.code} of {_who(referrer)} was "
            f"{_days(at - click.created_at)}, within the {program.window_days}-day window."
        ),
    ), None


def resolve(
    program: Program,
    friend: Customer,
    *,
    email: str | None = None,
    referral_code: str | None = None,
    visitor_id: str | None = None,
    at: datetime,
    friend_is_new: bool = False,
) -> Attribution:
    """Walk the chain; the first link that matches wins. Reads only, writes nothing.

    friend_is_new: the friend was added in the caller's transaction, so has no referral
    yet (and none is looked for) and no login (whose email is not looked for either)."""
    refusals: list[str] = []
    found: Attribution | None = None
    if referral_code:
        found, refusal = _by_code(program, friend, email, referral_code, friend_is_new)
        refusals += [refusal] if refusal else []
    if found is None and visitor_id:
        found, refusal = _by_visitor(program, friend, email, visitor_id, at, friend_is_new)
        refusals += [refusal] if refusal else []

    existing = None if friend_is_new else db.session.scalar(
        select(Referral).filter_by(friend_id=friend.id))
    if existing is not None and (found is None or found.referrer.id != existing.referrer_id):
        other = " (a friend is referred once, so the other referrer named was not used)"
        return Attribution(
            referrer=existing.referrer, matched_by="signup", referral=existing,
            code=db.session.get(ReferralCode, existing.code_id) if existing.code_id else None,
            reason=(
                f"the buyer was referred by {_who(existing.referrer)} when they signed up "
                f"on {existing.created_at:%Y-%m-%d}{other if found else ''}."
            ),
            refusals=refusals,
        )
    if found is not None:
        found.referral = existing
        found.refusals = refusals
        return found
    return Attribution(reason=refusals[0] if refusals else NO_MATCH, refusals=refusals)


def sentence(attribution: Attribution) -> str:
    """The reason as a sentence for an API answer."""
    prefix = "Attributed: " if attribution.attributed else "Not attributed: "
    return prefix + attribution.reason


def referral_for(
    program: Program, friend: Customer, attribution: Attribution, at: datetime
) -> Referral | None:
    """The friend's referral for an attribution, added (flushed) when it is new."""
    if not attribution.attributed:
        return None
    if attribution.referral is not None:
        return attribution.referral
    referral = Referral(
        program_id=program.id,
        referrer_id=attribution.referrer.id,
        friend_id=friend.id,
        code_id=attribution.code.id if attribution.code else None,
        click_id=attribution.click.id if attribution.click else None,
        matched_by=attribution.matched_by,
        reason=sentence(attribution)[:300],
        created_at=at,
    )
    db.session.add(referral)
    db.session.flush()
    return referral
