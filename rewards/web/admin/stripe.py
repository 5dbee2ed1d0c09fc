"""Stripe settings: whether Stripe is configured, what to register, what arrived."""

from flask import current_app, render_template
from sqlalchemy import select

from rewards.extensions import db
from rewards.models import StripeEvent
from rewards.stripe import gateway as stripe_gateway
from rewards.stripe.processing import HANDLERS
from rewards.web.admin import bp

RECENT_EVENTS = 50


@bp.get("/stripe")
def stripe_settings():
    events = db.session.scalars(
        select(StripeEvent).order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
        .limit(RECENT_EVENTS)).all()
    return render_template(
        "admin/stripe.html", api_key_set=stripe_gateway.configured(),
        webhook_set=stripe_gateway.webhook_configured(),
        secrets=len(current_app.config.get("STRIPE_WEBHOOK_SECRETS") or []),
        webhook_url=stripe_gateway.webhook_url(), event_types=tuple(HANDLERS),
        events=events, limit=RECENT_EVENTS)
