"""Read-only figures for the portal and the staff homes."""

from datetime import timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..models import Click, Conversion, Customer, Referral, Signup, utcnow


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
    """Totals over the last `days` days; revenue per currency, never added across."""
    since = utcnow() - timedelta(days=days)
    clicks = db.session.scalar(select(func.count(Click.id)).where(Click.created_at >= since))
    signups = db.session.scalar(select(func.count(Signup.id)).where(Signup.created_at >= since))
    referred = db.session.scalar(
        select(func.count(Signup.id)).where(Signup.created_at >= since,
                                            Signup.referral_id.is_not(None))
    )
    revenue = db.session.execute(
        select(Conversion.currency, func.count(Conversion.id), func.sum(Conversion.amount))
        .where(Conversion.occurred_at >= since, Conversion.referrer_id.is_not(None))
        .group_by(Conversion.currency)
        .order_by(Conversion.currency)
    ).all()
    return {
        "days": days,
        "clicks": clicks or 0,
        "signups": signups or 0,
        "referred_signups": referred or 0,
        "purchases": sum(row[1] for row in revenue),
        "revenue": [{"currency": c, "purchases": n, "amount": a} for c, n, a in revenue],
    }


def recent_conversions(limit: int = 20) -> list[Conversion]:
    return list(db.session.scalars(
        select(Conversion).where(Conversion.referrer_id.is_not(None))
        .order_by(Conversion.occurred_at.desc()).limit(limit)
    ))

