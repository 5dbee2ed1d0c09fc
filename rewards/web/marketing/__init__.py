"""Marketing's dashboard and its CSV exports (/marketing; admins too)."""

from flask import Blueprint

from rewards.web.security import require_roles

bp = Blueprint("marketing", __name__, url_prefix="/marketing")
bp.before_request(require_roles("marketing", "admin"))

from rewards.web.marketing import exports, views  # noqa: E402,F401
