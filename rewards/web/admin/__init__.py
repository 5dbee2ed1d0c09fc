"""The admin's pages (/admin): programs, reward policies, customers and codes, Stripe."""

from flask import Blueprint

from rewards.web.security import require_roles

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_roles("admin"))

from rewards.web.admin import policies, simulate, stripe, views  # noqa: E402,F401
