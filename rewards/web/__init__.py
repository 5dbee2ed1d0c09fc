"""The web side: one blueprint per kind of user, the security headers, and the error pages
(HTML for people, the API's JSON error shape under /api/ and /webhooks/)."""

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.money import format_money
from rewards.privacy import mask_email
from rewards.web import security
from rewards.web.admin import bp as admin_bp
from rewards.web.api import bp as api_bp
from rewards.web.auth import bp as auth_bp
from rewards.web.coordinator import bp as coordinator_bp
from rewards.web.marketing import bp as marketing_bp
from rewards.web.portal import bp as portal_bp
from rewards.web.public import bp as public_bp
from rewards.web.public.redirect import RedirectLane
from rewards.web.webhooks import bp as webhooks_bp

BLUEPRINTS = (public_bp, auth_bp, portal_bp, admin_bp, coordinator_bp, marketing_bp, api_bp,
              webhooks_bp)


def init_app(app: Flask) -> None:
    security.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    _register_errors(app)
    app.wsgi_app = RedirectLane(app, app.wsgi_app)  # answers GET /r/<code> ahead of Flask
    app.add_template_filter(format_money, "money")
    app.add_template_filter(mask_email, "mask_email")


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

