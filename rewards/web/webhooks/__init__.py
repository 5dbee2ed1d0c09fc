"""Webhooks from Stripe: verify the signature on the raw body, store the event, answer.

Intake only verifies, stores (once per event id: one insert and its commit) and answers;
the work is a job. After the commit of a new event, `rewards.stripe.inbox.stored` makes
sure a `process_stripe_events` job is queued (one Redis round trip; that job applies the
received events in batches), or without Redis applies the event inline.
"""

import json
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from rewards.errors import ServiceError
from rewards.extensions import csrf, db
from rewards.stripe.signature import SignatureError, verify

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


@bp.post("/stripe")
def stripe_webhook():
    from rewards.stripe.inbox import store, stored

    secrets = current_app.config.get("STRIPE_WEBHOOK_SECRETS") or []
    if not secrets:
        return _error(503, "not_configured",
                      "Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set.")
    payload = request.get_data()
    try:
        verify(payload, request.headers.get("Stripe-Signature"), secrets)
    except SignatureError as error:
        return _error(400, "bad_signature", str(error))
    try:
        event = json.loads(payload)
    except ValueError:
        return _error(400, "bad_json", "The body is not JSON.")
    try:
        row_id = store(event)
    except ServiceError as error:
        db.session.rollback()
        return jsonify(error.as_json()), error.status
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("could not store a Stripe event")
        return _error(503, "unavailable", "The event could not be stored; send it again.")
    if row_id is not None:
        try:
            stored(row_id)
        except Exception:  # stored: the sweep processes it later
            db.session.rollback()
            log.exception("processing Stripe event %s failed at intake", event["id"])
    return jsonify({"received": True, "duplicate": row_id is None}), 200
