"""Fixtures: an app per database backend, a logged-in client per role, an API key.

Integration tests run on SQLite always and on PostgreSQL when TEST_DATABASE_URL is
set. Without it those tests skip with a reason; under CI=true they fail instead.
"""

import os
import re
import sqlite3

import pytest
from hypothesis import settings
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from config import TestingConfig, database_url
from rewards import create_app
from rewards.extensions import db, limiter
from rewards.people.accounts import create_account
from rewards.people.apikeys import create_api_key
from rewards.people.programs import create_program

from .fake_stripe import FakeStripe, serve


@event.listens_for(Engine, "connect")
def _no_fsync(connection, _record) -> None:
    """The tests' SQLite files are thrown away, so a commit need not wait for the disk
    (`synchronous` changes durability only, not what a transaction sees or locks)."""
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA synchronous = OFF")


IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct-horse-battery"

# Hypothesis: a quick look locally ("dev": its default profile, fewer examples); in CI
# ("ci") its own ci profile (derandomized, no deadline, failures printed as blobs) at
# today's 100. A test that needs more or fewer examples than most asks for a multiple of
# the profile's (`settings.default.max_examples`), so it scales with the profile too.
settings.register_profile("dev", settings.get_profile("default"), max_examples=20)
settings.register_profile("ci", settings.get_profile("ci"), max_examples=100)
settings.load_profile("ci" if IN_CI else "dev")


def need_service(variable: str, what: str) -> str:
    """The service URL, or skip (locally) / fail (in CI) when it is not configured."""
    url = os.environ.get(variable)
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{variable} is not set under CI=true: {what} tests must run in CI.")
    pytest.skip(f"{what} tests need {variable}")


def backend_url(kind: str, tmp_path_factory) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    return database_url(need_service("TEST_DATABASE_URL", "PostgreSQL"))


def make_app(url: str, **overrides):
    return create_app(TestingConfig, {"SQLALCHEMY_DATABASE_URI": url, **overrides})


def reset_schema(app) -> None:
    """An empty schema as the models describe it, whatever an older run left behind."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE"))
            db.session.execute(text("CREATE SCHEMA public"))
            db.session.commit()
        else:
            db.drop_all()
        db.create_all()


def empty_tables(app) -> None:
    """Every table emptied, children first, and on PostgreSQL every id counting from 1
    again. DELETE, not TRUNCATE: on a test's few rows it costs milliseconds where
    TRUNCATE's new files for each table cost about 75 ms a test."""
    with app.app_context():
        db.session.remove()
        # Table names come from our own metadata, not from input.
        deletes = [f"DELETE FROM {t.name}" for t in reversed(db.metadata.sorted_tables)]  # noqa: S608
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("; ".join([*deletes, (
                "SELECT setval(format('%I', sequencename)::regclass, 1, false) "
                "FROM pg_sequences WHERE schemaname = current_schema()")])))
        else:
            for statement in deletes:
                db.session.execute(text(statement))
        db.session.commit()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    """One app and schema per backend for the whole session; tables emptied per test."""
    app = make_app(backend_url(request.param, tmp_path_factory))
    reset_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(backend):
    empty_tables(backend)
    limiter.reset()
    yield backend
    with backend.app_context():
        db.session.remove()


@pytest.fixture
def sqlite_app(tmp_path):
    """A SQLite-only app, for tests that are about the app rather than the database."""
    app = make_app(f"sqlite:///{tmp_path / 'app.db'}")
    reset_schema(app)
    limiter.reset()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def program(app):
    with app.app_context():
        made = create_program("shop", name="Shop Club", currency="usd", window_days=30,
                              landing_offer="Get $10 off your first order.")
        return made.id


@pytest.fixture
def api_key(app, program):
    with app.app_context():
        return create_api_key("tests")[1]


@pytest.fixture
def api(client, api_key):
    """A JSON API caller: api.post(path, json) / api.get(path)."""

    class Api:
        headers = {"Authorization": f"Bearer {api_key}"}

        def post(self, path, body):
            return client.post(f"/api/v1{path}", json=body, headers=self.headers)

        def get(self, path):
            return client.get(f"/api/v1{path}", headers=self.headers)

    return Api()


def csrf_token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token})


@pytest.fixture
def make_user(app, program):
    """make_user(role) -> the account's email, created with PASSWORD."""

    def make(role: str, email: str | None = None, name: str | None = None) -> str:
        email = email or f"{role}-{os.urandom(3).hex()}@example.com"
        with app.app_context():
            create_account(email, PASSWORD, role, name or role.title())
        return email

    return make


@pytest.fixture
def as_role(app, make_user):
    """as_role(role) -> a test client signed in with a new account of that role."""

    def signed_in(role: str):
        client = app.test_client()
        response = login(client, make_user(role))
        assert response.status_code == 302
        return client

    return signed_in


@pytest.fixture
def stripe_fake(app, monkeypatch):
    """The app talking to a local fake Stripe (tests/fake_stripe.py) for this test."""
    from rewards.stripe import gateway as stripe_gateway

    fake = FakeStripe()
    server = serve(fake)
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", "sk_test_fake")
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", fake.url)
    monkeypatch.setattr(stripe_gateway, "_promotion_codes", {})
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def referrer_code(app, api, program):
    """A referrer's referral code, under the Stripe tests' policy (10% to the referrer)."""
    from rewards.models import Program
    from rewards.policies import versions as policies

    from .stripe_kit import POLICY

    with app.app_context():
        policies.publish(db.session.get(Program, program), POLICY)
    return api.post("/customers", {"external_id": "ref", "email": "ref@example.com"}).json[
        "referral_code"]


@pytest.fixture
def redis_url():
    """TEST_REDIS_URL's database, emptied before and after the test."""
    from redis import Redis

    url = need_service("TEST_REDIS_URL", "Redis")
    connection = Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.flushdb()
