"""`flask rewards ...` commands as API.md lists them."""

import hashlib

from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Account, ApiKey, Click, Conversion, Customer, Program, Referral, Signup


def run(app, *args):
    return app.test_cli_runner().invoke(args=["rewards", *args])


def test_create_user_and_refusals(app, program):
    ok = run(app, "create-user", "--email", "Coord@Example.com", "--password",
             "long-enough-phrase", "--role", "coordinator", "--name", "Cora")
    assert ok.exit_code == 0, ok.output
    assert "created coordinator coord@example.com" in ok.output
    again = run(app, "create-user", "--email", "coord@example.com", "--password",
                "long-enough-phrase", "--role", "coordinator")
    assert again.exit_code == 1 and "exists" in again.output
    weak = run(app, "create-user", "--email", "x@example.com", "--password", "password123",
               "--role", "admin")
    assert weak.exit_code == 1 and "too common" in weak.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Account.id))) == 1


def test_create_api_key_prints_it_once_on_the_last_line(app, program):
    result = run(app, "create-api-key", "--name", "shop backend")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("rk_") and len(key) > 40
    with app.app_context():
        stored = db.session.scalar(select(ApiKey))
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    response = app.test_client().get("/api/v1/customers/nobody",
                                     headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404


def test_create_program_first_is_default(app):
    first = run(app, "create-program", "--slug", "shop", "--name", "Shop", "--currency", "EUR",
                "--window-days", "14", "--attribution", "first",
                "--destination", "https://shop.example/join")
    assert first.exit_code == 0 and "(default)" in first.output
    second = run(app, "create-program", "--slug", "b2b", "--name", "B2B", "--currency", "usd")
    assert "(default)" not in second.output
    bad = run(app, "create-program", "--slug", "x", "--name", "X", "--currency", "usd",
              "--destination", "javascript:alert(1)")
    assert bad.exit_code == 1
    with app.app_context():
        shop = db.session.scalar(select(Program).filter_by(slug="shop"))
        assert (shop.currency, shop.window_days, shop.attribution, shop.allowed_domain) == (
            "eur", 14, "first", "shop.example")
        assert db.session.scalar(select(func.count(Program.id))) == 2


def test_seed_demo_makes_a_living_program_once(app):
    result = run(app, "seed-demo")
    assert result.exit_code == 0, result.output
    for login in ("admin@demo.example", "coordinator@demo.example", "marketing@demo.example",
                  "maria@demo.example", "tom@demo.example"):
        assert login in result.output
    with app.app_context():
        def count(model):
            return db.session.scalar(select(func.count()).select_from(model))

        assert count(Customer) >= 20
        assert count(Click) >= 14
        assert count(Referral) >= 8
        assert count(Signup) >= 12
        attributed = db.session.scalar(
            select(func.count(Conversion.id)).where(Conversion.referrer_id.is_not(None)))
        assert attributed >= 5
        oldest = db.session.scalar(select(func.min(Click.created_at)))
        newest = db.session.scalar(select(func.max(Conversion.occurred_at)))
        assert (newest - oldest).days >= 20
        totals = count(Customer), count(Click), count(Conversion)
        from rewards.ledger.check import check_ledger
        from rewards.models import Payout, Reward

        assert count(Reward) >= 10
        awaiting = db.session.scalars(select(Payout.status)).all()
        assert awaiting and set(awaiting) == {"awaiting_approval"}
        assert check_ledger() == []
    again = run(app, "seed-demo")
    assert again.exit_code == 0 and "already" in again.output
    with app.app_context():
        assert (count(Customer), count(Click), count(Conversion)) == totals


def test_sweep_reports_what_it_did(app, program):
    result = run(app, "sweep")
    assert result.exit_code == 0
    assert "conversions requeued: 0" in result.output
