"""rq job functions. Each takes ids only, runs inside the app context, and is safe to run
twice. `enqueue` is called after the commit; without Redis it runs the job inline.
"""

import logging
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, update

from .extensions import db
from .models import Conversion, utcnow
from .queue import get_queue

log = logging.getLogger(__name__)

# Work recorded in the database but not done after this long is enqueued again by `sweep`.
STALE_AFTER = timedelta(minutes=5)


def enqueue(func, *ids) -> None:
    if current_app.config["INLINE_JOBS"]:
        func(*ids)
        return
    try:
        get_queue().enqueue(func, *ids)
    except RedisError:
        # The work is in the database; `sweep` will enqueue it once Redis answers again.
        log.warning("could not enqueue %s%r; sweep will retry", func.__name__, ids)


def process_conversion(conversion_id: int) -> bool:
    """The follow-up work for an attributed purchase, done once.

    Claims the conversion with a compare-and-set on `processed_at`, so two copies of
    the job racing do the work once. Reward computation (the policy engine) hooks in here.
    """
    claimed = db.session.execute(
        update(Conversion)
        .where(Conversion.id == conversion_id, Conversion.processed_at.is_(None))
        .values(processed_at=utcnow())
    ).rowcount
    db.session.commit()
    return claimed == 1


def flush_clicks() -> int:
    from .services.clicks import flush_clicks as flush

    return flush()


def sweep() -> dict:
    """Re-enqueue work that waited too long. Safe to run at any time, and concurrently."""
    cutoff = utcnow() - STALE_AFTER
    waiting = db.session.scalars(
        select(Conversion.id).where(
            Conversion.processed_at.is_(None),
            Conversion.referrer_id.is_not(None),
            Conversion.created_at < cutoff,
        )
    ).all()
    db.session.rollback()
    for conversion_id in waiting:
        enqueue(process_conversion, conversion_id)
    return {"conversions_requeued": len(waiting), "clicks_flushed": flush_clicks()}
