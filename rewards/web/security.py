"""Security headers on every answer, and the role check for staff areas."""

from flask import Flask, abort, redirect, request
from flask_login import current_user, login_url

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS_HEADER = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def init_app(app: Flask) -> None:
    defaults = HEADERS + ((HSTS_HEADER,) if app.config.get("HSTS") else ())
    app.after_request(header_setter(defaults))
    # The referral redirect is answered ahead of Flask's request cycle (public/redirect.py).
    app.extensions["rewards.security_headers"] = defaults


def header_setter(defaults: tuple[tuple[str, str], ...]):
    """An after_request hook adding each of `defaults` that the view did not set itself."""
    by_key = [(key.lower(), key, value) for key, value in defaults]

    def set_headers(response):
        # One pass over the answer's headers rather than a search per header: every
        # answer pays for this one.
        present = {key.lower() for key, _ in response.headers}
        for lowered, key, value in by_key:
            if lowered not in present:
                response.headers.add(key, value)
        return response

    return set_headers


def require_roles(*roles: str):
    """A blueprint `before_request` hook: anonymous users go to login, other roles get 403."""

    def check():
        if not current_user.is_authenticated:
            return redirect(login_url("auth.login", next_url=request.full_path.rstrip("?")))
        if current_user.role not in roles:
            abort(403)
        return None

    return check
