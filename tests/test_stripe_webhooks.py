"""POST /webhooks/stripe: Stripe's signature on the raw body, storing each event once,
answering, and processing in a job (inline here; through Redis when TEST_REDIS_URL is set)."""

import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import func, select, update

from rewards.background import get_queue
from rewards.extensions import db
from rewards.models import Conversion, Reward, StripeEvent, utcnow
from rewards.stripe.signature import SignatureError, verify
from rewards.sweep import sweep

from .conftest import make_app, need_service
from .stripe_kit import SECRETS, body, checkout, deliver, event, sign


@pytest.fixture
def secrets(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRETS", list(SECRETS))
    return SECRETS


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def statuses(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(StripeEvent.status).order_by(StripeEvent.id)))


# --- the signature -----------------------------------------------------------------------

def test_sign_matches_the_published_scheme():
    # HMAC-SHA256("whsec_test", "1700000000.{}") computed independently (openssl dgst).
    assert sign(b"{}", "whsec_test", 1700000000) == (
        "t=1700000000,v1=" + __import__("hmac").new(
            b"whsec_test", b"1700000000.{}", "sha256").hexdigest())
    assert verify(b"{}", sign(b"{}", "whsec_test", 1700000000), ["whsec_test"],
                  now=1700000000) == 1700000000


def test_no_secret_configured_answers_503(client, program):
    response = deliver(client, checkout("evt_1"))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "not_configured"


def bad_headers(payload: bytes) -> dict[str, tuple[str, str]]:
    """Each case: (the Stripe-Signature header, words the 400's message says)."""
    now = int(time.time())
    good = sign(payload, "whsec_test", now)
    mismatch = "No v1 signature in the Stripe-Signature header matches the body"
    return {
        "missing": ("", "header is missing"),
        "malformed": ("garbage", "header is malformed"),
        "no timestamp": (good.split(",", 1)[1], "header is malformed"),
        "text timestamp": (good.replace(f"t={now}", "t=soon"), "header is malformed"),
        "no v1": (f"t={now},v0={'0' * 64}", "header has no v1 signature"),
        "wrong secret": (sign(payload, "whsec_someone_else", now), mismatch),
        "tampered body": (sign(payload + b" ", "whsec_test", now), mismatch),
        "past": (sign(payload, "whsec_test", now - 301), "300 seconds in the past"),
        "future": (sign(payload, "whsec_test", now + 301), "300 seconds in the future"),
        "other timestamp": (good.replace(f"t={now}", f"t={now - 1}"), mismatch),
        "not ASCII": (good + ",v1=\u00e9", "header is not ASCII"),
    }


@pytest.mark.parametrize("case", list(bad_headers(b"")))
def test_bad_signatures_are_refused_and_nothing_is_stored(app, client, program, secrets,
                                                          case):
    payload = body(checkout("evt_1"))
    header, reason = bad_headers(payload)[case]
    response = deliver(client, payload, header=header)
    assert response.status_code == 400, case
    assert response.json["error"]["code"] == "bad_signature"
    assert reason in response.json["error"]["message"]
    assert count(app, StripeEvent) == 0
    assert count(app, Conversion) == 0


def test_a_missing_header_is_refused(app, client, program, secrets):
    response = client.post("/webhooks/stripe", data=body(checkout("evt_1")),
                           content_type="application/json")
    assert response.status_code == 400
    assert count(app, StripeEvent) == 0


def test_the_old_secret_is_accepted_while_rotating(app, client, program, secrets):
    assert deliver(client, checkout("evt_1"), secret="whsec_old").status_code == 200
    payload = body(checkout("evt_2", pi="pi_2"))
    now = int(time.time())
    both = (f"t={now},v1={sign(payload, 'whsec_nope', now).split('v1=')[1]},"
            f"v1={sign(payload, 'whsec_test', now).split('v1=')[1]}")
    assert deliver(client, payload, header=both).status_code == 200
    assert count(app, StripeEvent) == 2


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("offset, reason", [(-301, "in the past"), (301, "in the future")])
def test_a_stale_event_under_either_secret_is_refused_for_its_time(app, client, program,
                                                                   secrets, secret, offset,
                                                                   reason):
    response = deliver(client, checkout("evt_1"), secret=secret,
                       timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert reason in response.json["error"]["message"]
    assert count(app, StripeEvent) == 0


def test_a_v0_signature_beside_the_v1_is_ignored(app, client, program, secrets):
    payload = body(checkout("evt_1"))
    header = sign(payload, "whsec_test")
    assert deliver(client, payload, header=f"{header},v0={'0' * 64}").status_code == 200
    assert count(app, StripeEvent) == 1


def test_the_window_is_on_the_signed_timestamp_not_a_second_one(app, client, program,
                                                                secrets):
    # Replaying an old signature with a fresh t= added after it: the signed (first) one
    # is the one checked.
    payload = body(checkout("evt_1"))
    now = int(time.time())
    replay = sign(payload, "whsec_test", now - 3600).replace(",", f",t={now},", 1)
    response = deliver(client, payload, header=replay)
    assert response.status_code == 400
    assert "in the past" in response.json["error"]["message"]
    assert count(app, StripeEvent) == 0


def test_a_signed_body_that_is_not_utf8_is_refused(app, client, program, secrets):
    payload = b'{"id": "evt_1", "name": "\xe9"}'
    response = deliver(client, payload)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_signature"
    assert "not UTF-8" in response.json["error"]["message"]
    assert count(app, StripeEvent) == 0


def test_a_timestamp_within_five_minutes_is_accepted(app, client, program, secrets):
    now = int(time.time())
    assert deliver(client, checkout("evt_1"), timestamp=now - 290).status_code == 200
    assert deliver(client, checkout("evt_2", pi="pi_2"), timestamp=now + 290).status_code == 200


def test_verify_refuses_each_way():
    with pytest.raises(SignatureError):
        verify(b"{}", sign(b"{}", "whsec_test", 100), ["whsec_test"], now=401)
    with pytest.raises(SignatureError):
        verify(b"{}", sign(b"{}", "whsec_test", 401), ["whsec_test"], now=100)
    with pytest.raises(SignatureError):
        verify(b"{}", None, ["whsec_test"])


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'{"id": "evt_1"}'])
def test_a_signed_body_that_is_not_an_event_is_400(app, client, program, secrets, payload):
    response = deliver(client, payload)
    assert response.status_code == 400
    assert "error" in response.json
    assert count(app, StripeEvent) == 0


# --- storing once ------------------------------------------------------------------------

def test_the_same_event_five_times_is_stored_and_applied_once(app, client, secrets,
                                                              referrer_code):
    purchase = checkout("evt_1", client_reference_id=referrer_code)
    answers = [deliver(client, purchase) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json for a in answers] == [{"received": True, "duplicate": False}] + [
        {"received": True, "duplicate": True}] * 4
    assert count(app, StripeEvent) == 1
    assert count(app, Conversion) == 1
    assert count(app, Reward) == 1
    assert statuses(app) == ["processed"]


def test_the_same_event_five_at_once_is_stored_and_applied_once(app, secrets, referrer_code):
    purchase = body(checkout("evt_1", client_reference_id=referrer_code))
    barrier = threading.Barrier(5)
    answers, errors = [], []

    def send():
        client = app.test_client()
        barrier.wait()
        try:
            answers.append(deliver(client, purchase))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(a.status_code for a in answers) == [200] * 5
    assert sorted(a.json["duplicate"] for a in answers) == [False] + [True] * 4
    assert count(app, StripeEvent) == 1
    assert count(app, Conversion) == 1
    assert count(app, Reward) == 1
    assert statuses(app) == ["processed"]


def test_an_unknown_type_is_stored_and_ignored(app, client, program, secrets):
    response = deliver(client, event("evt_1", "customer.created", {"id": "cus_1"}))
    assert response.status_code == 200
    with app.app_context():
        row = db.session.scalar(select(StripeEvent))
        assert (row.status, row.outcome) == ("ignored", "Not an event this platform uses.")
        assert row.type == "customer.created"


def test_a_failing_event_is_answered_and_marked_failed(app, client, program, secrets):
    broken = checkout("evt_1", currency="dollars")
    response = deliver(client, broken)
    assert response.status_code == 200
    with app.app_context():
        row = db.session.scalar(select(StripeEvent))
        assert row.status == "failed"
        assert row.attempts == 1
        assert "currency" in row.outcome
    assert count(app, Conversion) == 0


# --- Redis down, then up -----------------------------------------------------------------

def down_app(app):
    # The rate limiter is shared by every app: keep its storage in memory, not on the
    # unreachable Redis, or the next test's limiter.reset() would fail.
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL="redis://127.0.0.1:1/0",
                    STRIPE_WEBHOOK_SECRETS=list(SECRETS), RATELIMIT_STORAGE_URI="memory://")


def test_redis_down_still_stores_and_answers(app, referrer_code):
    down = down_app(app)
    response = deliver(down.test_client(), checkout("evt_1", client_reference_id=referrer_code))
    assert response.status_code == 200
    assert response.json == {"received": True, "duplicate": False}
    assert statuses(app) == ["received"]
    assert count(app, Conversion) == 0


def test_sweep_processes_what_redis_missed_once(app, referrer_code):
    redis_url = need_service("TEST_REDIS_URL", "Redis")
    Redis.from_url(redis_url).flushdb()
    down = down_app(app)
    assert deliver(down.test_client(),
                   checkout("evt_1", client_reference_id=referrer_code)).status_code == 200
    up = make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url)
    with up.app_context():
        assert sweep()["stripe_events_requeued"] == 0  # not yet two minutes old
        db.session.execute(update(StripeEvent).values(
            received_at=utcnow() - timedelta(minutes=3)))
        db.session.commit()
        assert sweep()["stripe_events_requeued"] == 1
        worker = SimpleWorker([get_queue()], connection=get_queue().connection)
        worker.work(burst=True)
        assert sweep()["stripe_events_requeued"] == 0
        worker.work(burst=True)
    assert statuses(app) == ["processed"]
    assert count(app, Conversion) == 1
    assert count(app, Reward) == 1
    Redis.from_url(redis_url).flushdb()


def test_sweep_queues_one_batch_job_for_every_stale_event(app, referrer_code):
    redis_url = need_service("TEST_REDIS_URL", "Redis")
    Redis.from_url(redis_url).flushdb()
    stale = utcnow() - timedelta(minutes=3)
    with app.app_context():
        for n in range(5):
            db.session.add(StripeEvent(
                event_id=f"evt_{n}", type="checkout.session.completed", created=int(time.time()),
                payload=body(checkout(f"evt_{n}", pi=f"pi_{n}", email=f"b{n}@example.com",
                                      client_reference_id=referrer_code)).decode(),
                # Received ones Redis missed, and ones that failed before (retried too).
                status="failed" if n % 2 else "received", attempts=n % 2,
                received_at=stale))
        db.session.commit()
    up = make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url)
    with up.app_context():
        assert sweep()["stripe_events_requeued"] == 5
        queue = get_queue()
        jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
        assert [job.func_name for job in jobs] == ["rewards.jobs.process_stripe_events"]
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert sweep()["stripe_events_requeued"] == 0
        assert len(queue) == 0
    assert statuses(app) == ["processed"] * 5
    assert count(app, Conversion) == 5
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Conversion).where(
            Conversion.referrer_id.is_not(None), Conversion.processed_at.is_not(None))) == 5
        assert db.session.scalar(select(func.max(StripeEvent.attempts))) == 1
    Redis.from_url(redis_url).flushdb()


def test_sweep_retries_a_stale_received_event_inline(app, referrer_code):
    with app.app_context():
        db.session.add(StripeEvent(
            event_id="evt_1", type="checkout.session.completed", created=int(time.time()),
            payload=body(checkout("evt_1", client_reference_id=referrer_code)).decode(),
            received_at=utcnow() - timedelta(minutes=3)))
        db.session.commit()
        assert sweep()["stripe_events_requeued"] == 1
        assert sweep()["stripe_events_requeued"] == 0
    assert statuses(app) == ["processed"]
    assert count(app, Reward) == 1
