"""`flask rewards stripe-replay --since DAY`: reads back Stripe's events, stores and
processes the missing ones, and changes nothing when run again."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Conversion, StripeEvent


def run(app, *args):
    return app.test_cli_runner().invoke(args=["rewards", "stripe-replay", *args])


def test_refuses_a_bad_date(app, stripe_fake):
    result = run(app, "--since", "2025-13-01")
    assert result.exit_code == 1
    assert "not a date" in result.output
    assert stripe_fake.requests == []


def test_refuses_without_stripe(app):
    result = run(app, "--since", "2025-01-01")
    assert result.exit_code == 1
    assert "Stripe is not configured" in result.output


def event(n: int, kind: str, obj: dict, created: int) -> dict:
    return {"id": f"evt_replay_{n}", "object": "event", "type": kind, "created": created,
            "api_version": "2024-06-20", "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def checkout(n: int, email: str, amount: int, created: int, code: str | None = None) -> dict:
    return event(n, "checkout.session.completed", {
        "id": f"cs_test_{n}", "object": "checkout.session", "mode": "payment",
        "payment_status": "paid", "status": "complete", "amount_total": amount,
        "currency": "usd", "payment_intent": f"pi_replay_{n}", "customer": None,
        "client_reference_id": code, "metadata": {}, "invoice": None,
        "customer_details": {"email": email, "name": email.split("@")[0].title()},
        "created": created}, created)


@pytest.fixture
def held_events(app, api, stripe_fake):
    """Five events, four of them over two pages: two purchases (one referred), an unrelated event,
    and one purchase before --since that must not be read."""
    code = api.post("/customers", {"external_id": "ana", "email": "ana@example.com"}).json[
        "referral_code"]
    now = int(datetime.now(UTC).timestamp())
    old = int((datetime.now(UTC) - timedelta(days=40)).timestamp())
    stripe_fake.objects["event"] = [
        checkout(1, "friend@example.com", 5000, now - 300, code),
        checkout(2, "stranger@example.com", 2500, now - 200),
        event(3, "customer.created", {"id": "cus_1", "object": "customer"}, now - 100),
        checkout(4, "late@example.com", 4000, now - 50),
        checkout(5, "old@example.com", 1000, old),
    ]
    stripe_fake.events_page_size = 2
    return (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")


def state(app):
    with app.app_context():
        events = {e.event_id: (e.status, e.outcome) for e in db.session.scalars(
            select(StripeEvent))}
        conversions = {c.order_id: (c.referrer_id is not None, c.processed_at)
                       for c in db.session.scalars(select(Conversion))}
        return events, conversions


def test_replay_stores_and_processes_then_changes_nothing(app, held_events, stripe_fake):
    first = run(app, "--since", held_events)
    assert first.exit_code == 0, first.output
    assert "Read 4 events from Stripe" in first.output
    assert "4 new, 0 already stored" in first.output
    lists = stripe_fake.calls("GET /v1/events")
    assert len(lists) == 2
    assert lists[0].params["created"]["gte"] == int(
        datetime.strptime(held_events, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    assert lists[1].params["starting_after"] == "evt_replay_3"
    events, conversions = state(app)
    assert set(events) == {"evt_replay_1", "evt_replay_2", "evt_replay_3", "evt_replay_4"}
    assert all(status != "received" for status, _ in events.values()), events
    assert set(conversions) == {"pi_replay_1", "pi_replay_2", "pi_replay_4"}
    assert conversions["pi_replay_1"][0] is True
    with app.app_context():
        assert db.session.scalar(select(func.count(StripeEvent.id))) == 4

    second = run(app, "--since", held_events)
    assert second.exit_code == 0, second.output
    assert "0 new, 4 already stored" in second.output
    assert state(app) == (events, conversions)


def test_list_events_pages_through_the_fake(app, held_events, stripe_fake):
    from rewards.stripe.gateway import list_events

    since = int(datetime.strptime(held_events, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    with app.app_context():
        page, more = list_events(since, None)
        assert [e["id"] for e in page] == ["evt_replay_4", "evt_replay_3"] and more
        assert isinstance(page[0], dict)
        assert page[0]["data"]["object"]["payment_intent"] == "pi_replay_4"
        page, more = list_events(since, "evt_replay_3")
        assert [e["id"] for e in page] == ["evt_replay_2", "evt_replay_1"] and not more
        page, more = list_events(since, "evt_replay_1")
        assert page == [] and not more
