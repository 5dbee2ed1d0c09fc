"""The referrers whose own rewards the draft changes most, with who they are (masked)."""

from __future__ import annotations

from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Customer
from rewards.policies.replay.results import ReferrerChange
from rewards.privacy import mask_email

TOP_REFERRERS = 10


def top_referrers(draft: dict[tuple[int, str], int],
                  actual: dict[tuple[int, str], int]) -> list[ReferrerChange]:
    """The largest changes first ((referrer, currency) -> net rewards, draft and actual)."""
    changes = []
    for key in draft.keys() | actual.keys():
        before, after = actual.get(key, 0), draft.get(key, 0)
        if after != before:
            changes.append((key, before, after))
    changes.sort(key=lambda item: (-abs(item[2] - item[1]), item[0]))
    changes = changes[:TOP_REFERRERS]
    people = {customer.id: customer for customer in db.session.scalars(
        select(Customer).where(Customer.id.in_({key[0] for key, _, _ in changes})))
    } if changes else {}
    result = []
    for (referrer_id, currency), before, after in changes:
        person = people.get(referrer_id)
        result.append(ReferrerChange(
            referrer_id=referrer_id,
            external_id=person.external_id if person else None,
            name=person.name if person else None,
            email=mask_email(person.email if person else None),
            currency=currency, actual=before, draft=after,
        ))
    return result
