"""Policy drafts: the text an admin is editing, its validation, a preview, publishing.

A draft is saved as typed, valid or not, one per program. Errors are located messages:
"<path>: <message>" from the policy checker, or "line L, column C: ..." when the text is
not JSON at all. Previews run the pure engine on a synthetic purchase; nothing is written.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account, PolicyDraft, PolicyVersion, Program, utcnow
from rewards.money import AmountError, format_money, parse_major
from rewards.policies.canonical import to_document
from rewards.policies.cautions import cautions
from rewards.policies.evaluate import History, Purchase, evaluate
from rewards.policies.parse import PolicyInvalid
from rewards.policies.policy import Policy
from rewards.policies.versions import (
    InvalidPolicy,
    canonical,
    check_document,
    current_version,
    load,
    publish,
)

MAX_DRAFT_CHARS = 100_000
MAX_PREVIEW_FRIENDS = 10_000
MAX_PREVIEW_AMOUNT = 10**12  # minor units
# Minor units: the amount a preview starts with, and the shape a mistyped one is shown.
EXAMPLE_AMOUNT = 12000


class Unchanged(ServiceError):
    status = 409
    code = "unchanged"


@dataclass(frozen=True)
class Draft:
    """What the editor shows: the saved draft, else the published document, else a starter."""

    text: str
    source: str  # "draft", "published" or "starter"
    updated_at: datetime | None = None
    updated_by: Account | None = None


@dataclass(frozen=True)
class PreviewLine:
    role: str  # "referrer" or "friend"
    rule: str  # "referrer", "tiers[0].referrer", "milestones[1]", "friend"
    amount: int
    amount_text: str
    explanation: str


@dataclass(frozen=True)
class Preview:
    sentence: str  # "A $120.00 first purchase by a referrer with 4 rewarded referrals earns:"
    decisions: tuple[PreviewLine, ...]
    notes: tuple[str, ...]
    available_at: datetime
    hold_days: int
    total_text: str  # the sum of the decisions, formatted


# --------------------------------------------------------------------------- text


def pretty(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def pretty_version(version: PolicyVersion) -> str:
    """A published version for people: indented, keys in the documented order."""
    try:
        return pretty(to_document(load(version)))
    except (PolicyInvalid, ValueError):
        return version.document


def starter_document(program: Program) -> dict:
    """A small valid policy to start from: 10% for the referrer (capped), a fixed gift
    for the friend, on the friend's first purchase, available after 30 days."""
    return {
        "currency": program.currency.lower(),
        "hold_days": 30,
        "min_purchase": 0,
        "purchases": "first",
        "referrer": {"percent_bps": 1000, "cap": 5000},
        "friend": {"fixed": 500},
    }


def clean(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def parse_text(text: str) -> object:
    """The JSON value of `text`, or InvalidPolicy with one message giving line and column."""
    if not text.strip():
        raise InvalidPolicy(["line 1, column 1: the document is empty; write a JSON object"])
    if len(text) > MAX_DRAFT_CHARS:
        raise InvalidPolicy([f"policy: the document is longer than {MAX_DRAFT_CHARS:,} "
                             "characters"])
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidPolicy([f"line {error.lineno}, column {error.colno}: "
                             f"not valid JSON: {error.msg}"]) from None
    except RecursionError:
        raise InvalidPolicy(["policy: the document is nested too deeply"]) from None


def check_text(program: Program, text: str) -> Policy:
    """The parsed policy, or InvalidPolicy listing every error with its location."""
    return check_document(program, parse_text(clean(text)))


def review(program: Program, text: str) -> tuple[list[str], list[str]]:
    """(errors, cautions): every located error of the draft, or, when it is valid, what it
    can never pay (see `policies.cautions`)."""
    try:
        policy = check_text(program, text)
    except InvalidPolicy as invalid:
        return invalid.errors, []
    return [], cautions(policy)


def errors_in(program: Program, text: str) -> list[str]:
    return review(program, text)[0]


def split_error(message: str) -> tuple[str, str]:
    """("tiers[1].from", "must be ...") from "tiers[1].from: must be ..."."""
    location, sep, rest = message.partition(": ")
    return (location, rest) if sep else ("", message)


# --------------------------------------------------------------------------- drafts


def _saved(program: Program) -> PolicyDraft | None:
    return db.session.scalar(select(PolicyDraft).filter_by(program_id=program.id))


def get_draft(program: Program) -> Draft:
    saved = _saved(program)
    if saved is not None:
        return Draft(saved.document, "draft", saved.updated_at, saved.editor)
    version = current_version(program.id)
    if version is not None:
        return Draft(pretty_version(version), "published")
    return Draft(pretty(starter_document(program)), "starter")


def save_draft(program: Program, text: str, account: Account | None = None) -> list[str]:
    """Store `text` as the program's draft, valid or not; return its validation errors."""
    text = clean(text)
    if len(text) > MAX_DRAFT_CHARS:
        raise ServiceError(f"A draft is at most {MAX_DRAFT_CHARS:,} characters.",
                           field="document")
    for attempt in range(2):
        draft = _saved(program)
        if draft is None:
            draft = PolicyDraft(program_id=program.id)
            db.session.add(draft)
        draft.document = text
        draft.updated_by = account.id if account is not None else None
        draft.updated_at = utcnow()
        try:
            db.session.commit()
            break
        except IntegrityError:
            # Another admin saved this program's first draft meanwhile: the last save wins.
            db.session.rollback()
            if attempt:
                raise
    return errors_in(program, text)


def matches_version(program: Program, text: str, version: PolicyVersion | None) -> bool:
    """True when `text` is a valid policy with the same meaning as `version`."""
    if version is None:
        return False
    try:
        policy = check_text(program, text)
    except InvalidPolicy:
        return False
    return canonical(to_document(policy)) == version.document


def publish_draft(program: Program, text: str, account: Account | None = None) -> PolicyVersion:
    """Save `text` as the draft, then publish it as the next version.

    InvalidPolicy (every error, located) when it is not a valid policy, Unchanged when it
    says the same as the current version: nothing is published in either case."""
    text = clean(text)
    save_draft(program, text, account)
    document = parse_text(text)
    check_document(program, document)
    current = current_version(program.id)
    if matches_version(program, text, current):
        raise Unchanged(f"The draft is the same as version {current.version}; "
                        "nothing was published.")
    return publish(program, document, account)


# --------------------------------------------------------------------------- preview


def parse_amount(text: str | None, currency: str) -> int:
    """Major units as typed ("120.00", "120", "0.5") to minor units for `currency`."""
    try:
        minor = parse_major(text, currency, example=EXAMPLE_AMOUNT)
    except AmountError as error:
        raise ServiceError(str(error), field="amount") from None
    if minor is None:
        raise ServiceError("Give an amount.", field="amount")
    if minor <= 0:
        raise ServiceError("The amount must be more than zero.", field="amount")
    if minor > MAX_PREVIEW_AMOUNT:
        raise ServiceError(f"The amount must be at most "
                           f"{format_money(MAX_PREVIEW_AMOUNT, currency)}.", field="amount")
    return minor


def _referrals(count: int) -> str:
    if count == 0:
        return "no rewarded referrals"
    return f"{count} rewarded referral{'' if count == 1 else 's'}"


def preview(program: Program, document_text: str, amount: int, first_purchase: bool,
            rewarded_friends: int) -> Preview:
    """What `document_text` pays for one purchase of `amount` minor units by a friend of a
    referrer who already has `rewarded_friends` rewarded friends. Writes nothing.

    A first purchase is by a new friend; a repeat purchase is by the referrer's most
    recently rewarded friend, who already had their friend reward."""
    policy = check_text(program, document_text)
    if not 0 < amount <= MAX_PREVIEW_AMOUNT:
        raise ServiceError("The amount must be more than zero and at most "
                           f"{format_money(MAX_PREVIEW_AMOUNT, program.currency)}.",
                           field="amount")
    if not 0 <= rewarded_friends <= MAX_PREVIEW_FRIENDS:
        raise ServiceError(f"Give 0 to {MAX_PREVIEW_FRIENDS:,} rewarded referrals.",
                           field="rewarded_friends")
    now = utcnow()
    friends = tuple(range(1, rewarded_friends + 1))
    friend_id = rewarded_friends + 1 if first_purchase or not friends else friends[-1]
    purchase = Purchase(
        amount=amount,
        currency=program.currency.lower(),
        occurred_at=now,
        friend_id=friend_id,
        friend_signed_up_at=now,
        friend_prior_purchases=0 if first_purchase else 1,
        friend_rewarded_before=not first_purchase,
    )
    evaluation = evaluate(policy, purchase, History(rewarded_friends=friends))
    currency = policy.currency
    lines = tuple(PreviewLine(d.role, d.rule, d.amount, format_money(d.amount, currency),
                              d.explanation) for d in evaluation.decisions)
    kind = "first" if first_purchase else "repeat"
    ending = "earns:" if lines else "earns nothing."
    sentence = (f"A {format_money(amount, currency)} {kind} purchase by a referrer with "
                f"{_referrals(rewarded_friends)} {ending}")
    return Preview(
        sentence=sentence,
        decisions=lines,
        notes=evaluation.notes,
        available_at=evaluation.available_at,
        hold_days=policy.hold_days,
        total_text=format_money(sum(line.amount for line in lines), currency),
    )
