"""The referral coordinator's pages (/coordinator): the payout queue with its evidence and
fraud signals, approvals, unmatched sales, the audit log."""

from flask import Blueprint

from rewards.web.security import require_roles

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")
bp.before_request(require_roles("coordinator"))

from rewards.web.coordinator import audit, payouts, signals, unmatched, views  # noqa: E402,F401
