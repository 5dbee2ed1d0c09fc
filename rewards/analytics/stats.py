"""Read-only figures for the portal and the staff homes."""

from datetime import timedelta

from sqlalchemy import func, select

from rewards.analytics import rollups
from rewards.analytics.dashboard import Scope, sales, traffic
from rewards.extensions import db
from rewards.models import Click, Conversion, Customer, Referral, utcnow


def customer_counts(customer: Customer) -> dict:
    clicks = db.session.scalar(select(func.count(Click.id)).filter_by(referrer_id=customer.id))
    signups = db.session.scalar(
        select(func.count(Referral.id)).filter_by(referrer_id=customer.id)
    )
    purchases = db.session.scalar(
        select(func.count(Conversion.id)).filter_by(referrer_id=customer.id)
    )
    return {"clicks": clicks or 0, "signups": signups or 0, "purchases": purchases or 0}


def program_summary(days: int = 30) -> dict:
    """Totals over the last `days` UTC days, from the daily rollups; revenue per currency,
    never added across."""
    rollups.refresh()
    today = utcnow().date()
    scope = Scope(None, today - timedelta(days=days - 1), today)
    totals = traffic(scope)["totals"]
    revenue = sorted(sales(scope)["currencies"].values(), key=lambda row: row["currency"])
    return {
        "days": days,
        "clicks": totals["clicks"],
        "signups": totals["signups"],
        "referred_signups": totals["referred_signups"],
        "purchases": sum(row["purchases"] for row in revenue),
        "revenue": [{"currency": row["currency"], "purchases": row["purchases"],
                     "amount": row["revenue"]} for row in revenue],
    }


def recent_conversions(limit: int = 20) -> list[Conversion]:
    return list(db.session.scalars(
        select(Conversion).where(Conversion.referrer_id.is_not(None))
        .order_by(Conversion.occurred_at.desc()).limit(limit)
    ))

