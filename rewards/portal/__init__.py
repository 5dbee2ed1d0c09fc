from flask import Blueprint

from ..security import require_roles

bp = Blueprint("portal", __name__, url_prefix="/portal")
bp.before_request(require_roles("customer"))

from . import payouts, views  # noqa: E402,F401
