"""Password hashing: strong wherever the app really runs, cheap only under the tests."""

import pytest
from sqlalchemy import select

from config import DevelopmentConfig, ProductionConfig, TestingConfig
from rewards import create_app
from rewards.extensions import db
from rewards.models import Account
from rewards.people.accounts import authenticate, create_account

from .conftest import PASSWORD, reset_schema

SCRYPT_MIN_COST = 2**15  # Werkzeug's default work factor N


def app_for(config, url: str):
    return create_app(config, {"SECRET_KEY": "k" * 32, "SQLALCHEMY_DATABASE_URI": url})


def stored_hash(app, email: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Account.password_hash).filter_by(email=email))


@pytest.mark.parametrize("config", [ProductionConfig, DevelopmentConfig],
                         ids=["production", "development"])
def test_real_configs_store_scrypt_hashes_of_full_cost(tmp_path, config):
    app = app_for(config, f"sqlite:///{tmp_path / 'real.db'}")
    reset_schema(app)
    with app.app_context():
        create_account("admin@example.com", PASSWORD, "admin")
    method = stored_hash(app, "admin@example.com").split("$")[0]
    name, cost, *_ = method.split(":")
    assert name == "scrypt"
    assert int(cost) >= SCRYPT_MIN_COST


@pytest.mark.parametrize("made_by, checked_by", [
    (ProductionConfig, TestingConfig),
    (TestingConfig, ProductionConfig),
], ids=["production-hash-under-tests", "test-hash-under-production"])
def test_a_hash_verifies_whatever_method_the_app_hashes_with_now(tmp_path, made_by,
                                                                 checked_by):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    maker, checker = app_for(made_by, url), app_for(checked_by, url)
    reset_schema(maker)
    with maker.app_context():
        create_account("admin@example.com", PASSWORD, "admin")
    made = stored_hash(maker, "admin@example.com")
    assert made.startswith(made_by.PASSWORD_HASH_METHOD)
    assert not made.startswith(checked_by.PASSWORD_HASH_METHOD)
    with checker.app_context():
        assert authenticate("admin@example.com", PASSWORD).email == "admin@example.com"
        assert authenticate("admin@example.com", "not-the-password-1") is None
        assert authenticate("nobody@example.com", PASSWORD) is None
