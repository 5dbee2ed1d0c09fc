"""The admin's Stripe page: configuration, what to register, the last events."""

import json
from datetime import timedelta

from rewards.extensions import db
from rewards.models import StripeEvent, utcnow


def add_event(app, n, status="processed", outcome=None, at=None):
    with app.app_context():
        db.session.add(StripeEvent(
            event_id=f"evt_{n:04d}", type="checkout.session.completed", created=1_700_000_000 + n,
            payload=json.dumps({"id": f"evt_{n:04d}"}), status=status, outcome=outcome,
            received_at=at or utcnow()))
        db.session.commit()


def test_unconfigured(app, as_role):
    html = as_role("admin").get("/admin/stripe").get_data(as_text=True)
    assert 'data-testid="api-key-status"><span class="badge badge-error">Not set' in html
    assert "answers 503" in html
    assert "http://rewards.test/webhooks/stripe" in html
    for event in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                  "invoice.paid", "charge.refunded", "charge.dispute.created",
                  "charge.dispute.closed", "account.updated"):
        assert f"<code>{event}</code>" in html
    assert "No events received yet." in html


def test_configured_with_events(app, as_role, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", "sk_test_x")
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRETS", ["whsec_a", "whsec_b"])
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://rewards.example")
    now = utcnow()
    for n in range(55):
        add_event(app, n, at=now - timedelta(minutes=60 - n))
    add_event(app, 99, status="failed", outcome="No purchase has the order id pi_9.", at=now)
    response = as_role("admin").get("/admin/stripe")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="stripe-event"') == 50
    assert html.index("evt_0099") < html.index("evt_0054")
    assert "evt_0004" not in html
    assert "No purchase has the order id pi_9." in html
    assert 'badge badge-error" data-testid="event-status">Failed' in html
    assert "2 secrets, while rotating" in html
    assert "https://rewards.example/webhooks/stripe" in html
    assert "Not set" not in html


def test_linked_from_admin_home_and_admin_only(app, as_role):
    assert "/admin/stripe" in as_role("admin").get("/admin").get_data(as_text=True)
    for role in ("coordinator", "marketing", "customer"):
        assert as_role(role).get("/admin/stripe").status_code == 403
