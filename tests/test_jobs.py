"""Jobs: inline without Redis; with TEST_REDIS_URL, a real rq worker in burst mode."""

from datetime import timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select, update

from rewards.attribution.clicks import STREAM, flush_clicks
from rewards.background import get_queue
from rewards.extensions import db
from rewards.jobs import process_conversion
from rewards.models import Click, Conversion, utcnow
from rewards.people.apikeys import create_api_key
from rewards.people.programs import create_program
from rewards.sweep import sweep

from .conftest import make_app


@pytest.fixture
def redis_app(app, redis_url):
    """The same database as `app`, with jobs going through Redis."""
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url)


def setup_referrer(app):
    with app.app_context():
        create_program("shop", name="Shop", currency="usd")
        key = create_api_key("jobs")[1]
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    code = client.post("/api/v1/customers", json={"external_id": "r", "email": "r@example.com"},
                       headers=headers).json["referral_code"]
    return client, headers, code


def purchase(client, headers, code, order_id="o-1"):
    return client.post("/api/v1/conversions", headers=headers, json={
        "order_id": order_id, "email": "b@example.com", "amount": 1000, "currency": "usd",
        "referral_code": code})


def run_worker(app) -> None:
    with app.app_context():
        SimpleWorker([get_queue()], connection=get_queue().connection).work(burst=True)


def processed(app, order_id="o-1"):
    with app.app_context():
        return db.session.scalar(select(Conversion.processed_at).filter_by(order_id=order_id))


def test_process_conversion_does_its_work_once(app, api):
    code = api.post("/customers", {"external_id": "r", "email": "r@example.com"}).json[
        "referral_code"]
    conversion_id = api.post("/conversions", {"order_id": "o", "email": "b@example.com",
                                              "amount": 10, "currency": "usd",
                                              "referral_code": code}).json["conversion_id"]
    with app.app_context():
        assert process_conversion(conversion_id) is False  # inline already did it


def test_worker_runs_the_follow_up_after_commit(redis_app):
    client, headers, code = setup_referrer(redis_app)
    response = purchase(client, headers, code)
    assert response.status_code == 201
    assert processed(redis_app) is None  # queued, not yet run
    with redis_app.app_context():
        assert get_queue().count == 1
    run_worker(redis_app)
    assert processed(redis_app) is not None
    with redis_app.app_context():
        assert get_queue().count == 0
        assert process_conversion(response.json["conversion_id"]) is False  # safe twice


def test_clicks_go_through_the_redis_stream_in_batches(redis_app):
    client, _, code = setup_referrer(redis_app)
    for _ in range(5):
        assert client.get(f"/r/{code}").status_code == 302

    def stored():
        with redis_app.app_context():
            return db.session.scalar(select(func.count(Click.id)))

    assert stored() == 0  # the redirect did not touch the database
    with redis_app.app_context():
        assert redis_app.extensions["rewards.redis"].xlen(STREAM) == 5
        assert flush_clicks() == 5
        assert flush_clicks() == 0
        assert redis_app.extensions["rewards.redis"].xlen(STREAM) == 0
    assert stored() == 5


def test_redis_down_loses_nothing_and_sweep_recovers(app, redis_url):
    down = make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL="redis://127.0.0.1:1/0")
    client, headers, code = setup_referrer(down)
    response = purchase(client, headers, code)
    assert response.status_code == 201  # recorded even though it could not be enqueued
    assert processed(down) is None
    with app.app_context():
        db.session.execute(update(Conversion).values(created_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
    up = make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url)
    with up.app_context():
        assert sweep()["conversions_requeued"] == 1
    run_worker(up)
    assert processed(up) is not None
    with up.app_context():
        assert sweep()["conversions_requeued"] == 0


def test_every_job_enqueued_by_path_is_a_job():
    """Jobs are enqueued by dotted path, so a misspelt path would fail only when it runs:
    every "rewards.jobs.<name>" written in the code names a function of rewards.jobs."""
    import ast
    from pathlib import Path

    from rewards import jobs

    paths = set()
    for source in (Path(__file__).resolve().parent.parent / "rewards").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith("rewards.jobs."):
                paths.add(node.value)
    assert {"rewards.jobs.process_conversion", "rewards.jobs.send_payout",
            "rewards.jobs.process_stripe_events", "rewards.jobs.reward_purchases"} <= paths
    for path in paths:
        assert callable(getattr(jobs, path.removeprefix("rewards.jobs."), None)), path
