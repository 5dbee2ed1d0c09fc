"""The worker keeps the dashboard's rollups current on its own, without a dashboard read."""

from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import DailySales, DailyTraffic, RollupMark

from .test_jobs import purchase, redis_app, setup_referrer  # noqa: F401
from .test_worker_process import output, running_worker, wait_for


def test_worker_brings_rollups_up_to_date(redis_app, redis_url):  # noqa: F811
    client, headers, code = setup_referrer(redis_app)
    for _ in range(3):
        client.get(f"/r/{code}")
    assert purchase(client, headers, code).status_code == 201
    with running_worker(redis_app, redis_url) as worker:
        def current():
            with redis_app.app_context():
                clicks = db.session.scalar(select(func.sum(DailyTraffic.clicks)))
                purchases = db.session.scalar(select(func.sum(DailySales.purchases)))
                marks = db.session.scalar(select(func.count(RollupMark.id)))
                db.session.rollback()
                return (clicks, purchases, marks) == (3, 1, 0)

        assert wait_for(current), output(worker)
