"""Security headers on every answer, and the role check for staff areas."""

from flask import Flask, abort, redirect, request
from flask_login import current_user, login_url

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    hsts = app.config.get("HSTS")

    @app.after_request
    def set_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def require_roles(*roles: str):
    """A blueprint `before_request` hook: anonymous users go to login, other roles get 403."""

    def check():
        if not current_user.is_authenticated:
            return redirect(login_url("auth.login", next_url=request.full_path.rstrip("?")))
        if current_user.role not in roles:
            abort(403)
        return None

    return check
