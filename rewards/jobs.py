"""rq entry points. Each takes ids only, makes one domain call in the app context, and is
safe to run twice. They are enqueued by dotted path (`rewards.background.enqueue`)."""

from rewards import sweep as sweeping
from rewards.analytics import rollups
from rewards.attribution import clicks
from rewards.ledger import compute
from rewards.payouts import sending
from rewards.stripe import inbox as stripe_inbox


def process_conversion(conversion_id: int) -> bool:
    """Compute an attributed purchase's rewards, once; False when already done."""
    return compute.reward_conversion(conversion_id)


def reward_purchases(conversion_ids: list[int]) -> int:
    """Compute the rewards of these attributed purchases, each once; returns how many were
    computed. One that fails is left to the sweep."""
    return compute.reward_many(conversion_ids)


def send_payout(payout_id: int) -> str:
    """Send an approved payout through Stripe; only one copy of the job calls Stripe."""
    return sending.send(payout_id)


def resume_payout(payout_id: int) -> str:
    """Finish a payout whose sender died: record what Stripe made, or send it."""
    return sending.send(payout_id, resume=True)


def process_stripe_event(event_row_id: int) -> str:
    """Apply a stored Stripe event; safe twice (its status moves by compare-and-set)."""
    return stripe_inbox.process(event_row_id)


def process_stripe_events(event_row_ids: list[int] | None = None) -> int:
    """Apply the received Stripe events in batches until none waits (`event_row_ids`, from
    the sweep, first); returns how many were claimed."""
    return stripe_inbox.drain(event_row_ids)


def flush_clicks() -> int:
    """Move the clicks queued in Redis into the database."""
    return clicks.flush_clicks()


def refresh_rollups() -> int:
    """Recount the dashboard's marked days."""
    return rollups.refresh()


def sweep() -> dict:
    """Pick up work that waited too long (`rewards.sweep`)."""
    return sweeping.sweep()
