from flask import Blueprint

from ..security import require_roles

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")
bp.before_request(require_roles("coordinator"))

from . import audit, payouts, signals, unmatched, views  # noqa: E402,F401
