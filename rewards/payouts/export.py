"""The coordinator's payouts CSV: the payouts the queue's filters match, one row each,
amounts in major units of their own currency and the customer's email masked."""

from collections.abc import Iterator

from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Customer, Payout
from rewards.money import major_units
from rewards.payouts.queue import QueueFilters
from rewards.privacy import mask_email

EXPORT_HEADER = ("id", "customer_external_id", "email", "amount", "currency", "method",
                 "status", "reference", "created", "approved", "paid")


def export_rows(filters: QueueFilters, batch: int = 500) -> Iterator[tuple]:
    """The payouts matching `filters`, oldest first, streamed from the database; the
    customer's email is masked (the file leaves the platform)."""
    stmt = (select(Payout, Customer.external_id, Customer.email)
            .join(Customer, Customer.id == Payout.customer_id)
            .where(*filters.conditions()).order_by(Payout.id)
            .execution_options(yield_per=batch))
    for payout, external_id, email in db.session.execute(stmt):
        yield (payout.id, external_id or "", mask_email(email), major_units(
            payout.amount, payout.currency), payout.currency.upper(), payout.method,
            payout.status, payout.reference or "", _iso(payout.created_at),
            _iso(payout.approved_at), _iso(payout.paid_at))


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
