"""Only-once rules under real threads racing on a real database (SQLite and PostgreSQL)."""

import threading

from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Conversion, Customer, Referral, Signup

THREADS = 10


def race(app, request_fn):
    """Run request_fn(client) in THREADS threads released at the same moment."""
    barrier = threading.Barrier(THREADS)
    results, errors = [], []

    def worker():
        client = app.test_client()
        barrier.wait()
        try:
            results.append(request_fn(client))
        except Exception as error:  # surfaced below with the thread's traceback
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_the_same_purchase_sent_at_once_is_recorded_once(app, api):
    code = api.post("/customers", {"external_id": "ref", "email": "ref@example.com"}).json[
        "referral_code"]
    body = {"order_id": "race-1", "email": "buyer@example.com", "amount": 5000,
            "currency": "usd", "referral_code": code}
    responses = race(app, lambda c: c.post("/api/v1/conversions", json=body,
                                           headers=api.headers))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], [r.json for r in responses]
    assert len({r.json["conversion_id"] for r in responses}) == 1
    assert count(app, Conversion) == 1
    assert count(app, Referral) == 1
    with app.app_context():
        assert db.session.scalar(select(Conversion.processed_at)) is not None


def test_the_same_signup_sent_at_once_makes_one_customer(app, api, program):
    body = {"email": "new@example.com", "external_id": "n-1"}
    responses = race(app, lambda c: c.post("/api/v1/signups", json=body, headers=api.headers))
    assert sorted(r.status_code for r in responses) == [200] * (THREADS - 1) + [201]
    assert count(app, Customer) == 1
    assert count(app, Signup) == 1
