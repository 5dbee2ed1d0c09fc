"""Referral rewards: links and codes, attribution, rules-based rewards, approved payouts."""

from pathlib import Path

from flask import Flask

from config import config_from_env
from rewards import background
from rewards.extensions import csrf, db, limiter, login_manager, migrate

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config=None, overrides: dict | None = None) -> Flask:
    """Build the app. `config` is a config class (default: from REWARDS_ENV)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config or config_from_env())
    app.config.update(overrides or {})
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production.")
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "rewards-limits")

    from rewards import models, web  # noqa: F401 - models registers the tables
    from rewards.attribution import clicks
    from rewards.cli import rewards_cli

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    background.init_app(app)
    clicks.init_app(app)
    web.init_app(app)
    app.cli.add_command(rewards_cli)
    return app
