"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

import uuid
from datetime import datetime

import flask_migrate
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from rewards.analytics import tallies
from rewards.analytics.rollups import refresh
from rewards.extensions import db
from rewards.models import DailyReferrerTally, DailyTraffic

from .conftest import make_app, need_service


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    from config import database_url

    url = make_url(database_url(need_service("TEST_DATABASE_URL", "PostgreSQL")))
    name = f"rewards_migrations_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_from_empty_matches_the_models(empty_database):
    app = make_app(empty_database)
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            drift = compare_metadata(context, db.metadata)
        tables = set(inspect(db.engine).get_table_names())
        db.engine.dispose()
    assert drift == []
    assert {"programs", "customers", "accounts", "referral_codes", "clicks", "referrals",
            "signups", "conversions", "api_keys"} <= tables


def test_downgrade_to_empty_and_up_again(empty_database):
    app = make_app(empty_database)
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
        assert "conversions" in inspect(db.engine).get_table_names()
        db.engine.dispose()


AT = datetime(2026, 3, 14, 9, 30)  # naive UTC, as the columns store it


def insert_program_and_referrer(at: datetime) -> None:
    """Program 1 with referrer customer 1 and code 1, inserted as an older schema holds them."""
    db.session.execute(text(
        "INSERT INTO programs (id, slug, name, currency, window_days, attribution, "
        "landing_headline, landing_offer, is_default, payout_schedule, payout_minimum, "
        "velocity_limit, created_at) VALUES (1, 'p', 'P', 'usd', 30, 'last', '', '', "
        "false, 'on_demand', 0, 10, :at)"), {"at": at})
    db.session.execute(text(
        "INSERT INTO customers (id, program_id, email, stripe_account_ready, created_at) "
        "VALUES (1, 1, 'r@example.com', false, :at)"), {"at": at})
    db.session.execute(text(
        "INSERT INTO referral_codes (id, program_id, customer_id, code, code_key, "
        "is_vanity, is_primary, active, created_at) "
        "VALUES (1, 1, 1, 'ABC', 'abc', false, true, true, :at)"), {"at": at})


def test_upgrading_a_database_with_clicks_fills_their_rollups(empty_database):
    """0005 marks the days that already have rows, so the first refresh counts them."""
    app = make_app(empty_database)
    with app.app_context():
        flask_migrate.upgrade(revision="0004")
        insert_program_and_referrer(AT)
        for n in range(3):
            db.session.execute(text(
                "INSERT INTO clicks (uid, program_id, code_id, referrer_id, visitor_id, "
                "created_at) VALUES (:uid, 1, 1, 1, :visitor, :at)"),
                {"uid": f"u{n}", "visitor": f"v{n % 2}", "at": AT})
        db.session.commit()
        flask_migrate.upgrade()
        assert refresh() == 1
        row = db.session.execute(select(DailyTraffic.day, DailyTraffic.clicks)).one()
        assert (row.day.isoformat(), row.clicks) == ("2026-03-14", 3)
        assert db.session.scalar(select(func.count()).select_from(DailyTraffic)) == 1
        db.session.remove()
        db.engine.dispose()


def test_upgrading_to_referrer_tallies_recounts_the_days_of_the_old_rows(empty_database):
    """0007 replaces the per-referrer rows by tallies and marks their days for a recount."""
    app = make_app(empty_database)
    with app.app_context():
        flask_migrate.upgrade(revision="0006")
        insert_program_and_referrer(AT)
        db.session.execute(text(
            "INSERT INTO customers (id, program_id, email, stripe_account_ready, created_at) "
            "VALUES (2, 1, 'friend@example.com', false, :at)"), {"at": AT})
        db.session.execute(text(
            "INSERT INTO conversions (program_id, source, order_id, customer_id, referrer_id, "
            "amount, currency, occurred_at, reason, request_hash, refunded_amount, "
            "created_at) VALUES (1, 'api', 'o-1', 2, 1, 4500, 'usd', :at, 'code', 'h', 500, "
            ":at)"), {"at": AT})
        db.session.execute(text(
            "INSERT INTO daily_referrers (day, program_id, referrer_id, currency, purchases, "
            "revenue) VALUES (:day, 1, 1, 'usd', 1, 4000)"), {"day": AT.date()})
        db.session.commit()
        flask_migrate.upgrade()
        assert "daily_referrers" not in inspect(db.engine).get_table_names()
        assert refresh() == 1
        row = db.session.execute(select(DailyReferrerTally)).scalar_one()
        assert (row.day, row.currency) == (AT.date(), "usd")
        assert tallies.unpack(row.tally).tolist() == [[1], [1], [4000]]
        db.session.remove()
        db.engine.dispose()
