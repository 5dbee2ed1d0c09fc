"""Referral rewards: links and codes, attribution, rules-based rewards, approved payouts."""

from flask import Flask, jsonify, render_template, request

from config import config_from_env
from rewards import background as queue
from rewards.extensions import csrf, db, limiter, login_manager, migrate
from rewards.money import format_money
from rewards.privacy import mask_email
from rewards.web import security


def create_app(config=None, overrides: dict | None = None) -> Flask:
    """Build the app. `config` is a config class (default: from REWARDS_ENV)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config or config_from_env())
    app.config.update(overrides or {})
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production.")
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "rewards-limits")

    from rewards import models  # noqa: F401 - registers the tables
    from rewards.attribution import clicks
    from rewards.web.public.redirect import RedirectLane

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    queue.init_app(app)
    clicks.init_app(app)
    security.init_app(app)
    _register_blueprints(app)
    _register_errors(app)
    app.wsgi_app = RedirectLane(app, app.wsgi_app)  # answers GET /r/<code> ahead of Flask
    app.add_template_filter(format_money, "money")
    app.add_template_filter(mask_email, "mask_email")

    from rewards.cli import rewards_cli

    app.cli.add_command(rewards_cli)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _register_blueprints(app: Flask) -> None:
    from rewards.web.admin import bp as admin_bp
    from rewards.web.api import bp as api_bp
    from rewards.web.auth import bp as auth_bp
    from rewards.web.coordinator import bp as coordinator_bp
    from rewards.web.marketing import bp as marketing_bp
    from rewards.web.portal import bp as portal_bp
    from rewards.web.public import bp as public_bp
    from rewards.web.webhooks import bp as webhooks_bp

    for bp in (public_bp, auth_bp, portal_bp, admin_bp, coordinator_bp, marketing_bp, api_bp,
               webhooks_bp):
        app.register_blueprint(bp)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/"))


def _register_errors(app: Flask) -> None:
    messages = {
        400: ("bad_request", "The request could not be understood."),
        403: ("forbidden", "You do not have access to this page."),
        404: ("not_found", "There is nothing at this address."),
        405: ("method_not_allowed", "This method is not allowed here."),
        413: ("too_large", "The request is too large."),
        429: ("rate_limited", "Too many attempts. Wait a minute and try again."),
        500: ("server_error", "Something went wrong on our side. It has been logged."),
    }

    def handler(status):
        code, message = messages[status]

        def handle(error):
            if status == 500:
                db.session.rollback()
            if _wants_json():
                return jsonify({"error": {"code": code, "message": message}}), status
            return render_template("errors/error.html", status=status, message=message), status

        return handle

    for status in messages:
        app.register_error_handler(status, handler(status))

    from flask_wtf.csrf import CSRFError

    from rewards.errors import ServiceError

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        db.session.rollback()
        if _wants_json():
            response = jsonify(error.as_json())
            if error.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="rewards"'
            return response, error.status
        return render_template("errors/error.html", status=error.status,
                               message=error.message), error.status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        message = "The form expired or was not sent from this site. Reload the page and retry."
        return render_template("errors/error.html", status=400, message=message), 400

