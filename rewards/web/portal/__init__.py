"""The customer's portal (/portal): their link, code, counts, rewards and how they are paid."""

from flask import Blueprint

from rewards.web.security import require_roles

bp = Blueprint("portal", __name__, url_prefix="/portal")
bp.before_request(require_roles("customer"))

from rewards.web.portal import payouts, views  # noqa: E402,F401
