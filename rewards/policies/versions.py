"""Publishing reward policy versions: validated, numbered, immutable."""

import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rewards.audit import log as audit
from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account, PolicyVersion, Program
from rewards.policies.canonical import to_document
from rewards.policies.parse import PolicyInvalid, parse_policy
from rewards.policies.policy import Policy


class InvalidPolicy(ServiceError):
    status = 422
    code = "invalid_policy"

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors), field="document")
        self.errors = errors


def canonical(document: dict) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def check_document(program: Program, document: object) -> Policy:
    """The parsed policy, or InvalidPolicy listing every error with its location."""
    try:
        return parse_policy(document, currency=program.currency)
    except PolicyInvalid as invalid:
        raise InvalidPolicy(invalid.errors) from None


def current_version(program_id: int) -> PolicyVersion | None:
    return db.session.scalar(
        select(PolicyVersion).filter_by(program_id=program_id)
        .order_by(PolicyVersion.version.desc()).limit(1)
    )


# Parsed versions by (id, digest of the document): versions never change and a parsed
# Policy is frozen, so each is parsed once per process rather than once per purchase
# rewarded (the digest tells apart databases whose versions share ids, as tests' do).
_PARSED: dict[tuple[int, str], Policy] = {}
_PARSED_MAX = 64


def _remember(key: tuple[int, str], policy: Policy) -> Policy:
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = policy
    return policy


def load(version: PolicyVersion) -> Policy:
    key = (version.id, version.digest)
    policy = _PARSED.get(key)
    if policy is None or version.digest is None:
        policy = _remember(key, parse_policy(json.loads(version.document)))
    return policy


def load_version(version_id: int, digest: str | None) -> Policy:
    """The parsed policy of a version known by id and digest: read and parsed only when
    this process has not parsed it yet."""
    policy = _PARSED.get((version_id, digest)) if digest else None
    if policy is None:
        policy = load(db.session.get(PolicyVersion, version_id))
    return policy


def publish(program: Program, document: object, account: Account | None = None) -> PolicyVersion:
    """Validate and publish as the program's next version, audited in the same
    transaction (`account` is None from the command line). Racing publishers get
    consecutive numbers; nothing is published when the document is invalid."""
    policy = check_document(program, document)
    text = canonical(to_document(policy))
    for _ in range(5):
        number = (db.session.scalar(select(func.max(PolicyVersion.version))
                                    .filter_by(program_id=program.id)) or 0) + 1
        version = PolicyVersion(program_id=program.id, version=number, document=text,
                                digest=hashlib.sha256(text.encode()).hexdigest(),
                                published_by=account.id if account else None)
        db.session.add(version)
        audit.record(account, "publish_policy", f"program:{program.id}",
                     before={"version": number - 1} if number > 1 else None,
                     after={"version": number})
        try:
            db.session.commit()
            return version
        except IntegrityError:
            db.session.rollback()
    raise ServiceError("Another version was being published; try again.", code="conflict")


def history(program_id: int) -> list[PolicyVersion]:
    return list(db.session.scalars(
        select(PolicyVersion).filter_by(program_id=program_id)
        .order_by(PolicyVersion.version.desc())
    ))
