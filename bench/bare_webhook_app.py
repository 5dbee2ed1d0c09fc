"""The baseline for bench/webhooks.py: a bare Flask app that verifies Stripe's signature
and inserts one row per event into a one-table database (BARE_DATABASE_URL)."""

import os

import stripe
from flask import Flask, request
from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, insert
from sqlalchemy.exc import IntegrityError

SECRET = os.environ["STRIPE_WEBHOOK_SECRET"]
engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=True)
events = Table("bare_webhook_events", MetaData(),
               Column("event_id", String(64), primary_key=True),
               Column("type", String(64)), Column("payload", Text))
events.create(engine, checkfirst=True)

app = Flask(__name__)


@app.post("/webhooks/stripe")
def webhook():
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""),
                                               SECRET, tolerance=300)
    except (ValueError, stripe.SignatureVerificationError):
        return "bad signature", 400
    try:
        with engine.begin() as connection:
            connection.execute(insert(events).values(event_id=event["id"], type=event["type"],
                                                     payload=payload.decode()))
    except IntegrityError:
        pass  # a replay: stored already
    return "", 200
