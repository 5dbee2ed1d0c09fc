from flask import Blueprint

from ..security import require_roles

bp = Blueprint("marketing", __name__, url_prefix="/marketing")
bp.before_request(require_roles("marketing", "admin"))

from . import exports, views  # noqa: E402,F401
