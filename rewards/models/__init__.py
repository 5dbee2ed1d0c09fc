"""All tables, grouped by domain. Importing this module registers them with the metadata."""

from .drafts import PolicyDraft
from .ledger import (
    BALANCE_COLUMNS,
    REWARD_STATUSES,
    Adjustment,
    Balance,
    PolicyVersion,
    Refund,
    Reward,
)
from .people import ROLES, STAFF_ROLES, Account, ApiKey, Customer
from .programs import ATTRIBUTION_MODELS, Program
from .referrals import MATCHED_BY, Click, Conversion, Referral, ReferralCode, Signup
from .types import utcnow

__all__ = [
    "BALANCE_COLUMNS",
    "REWARD_STATUSES",
    "Adjustment",
    "Balance",
    "PolicyDraft",
    "PolicyVersion",
    "Refund",
    "Reward",
    "ATTRIBUTION_MODELS",
    "MATCHED_BY",
    "ROLES",
    "STAFF_ROLES",
    "Account",
    "ApiKey",
    "Click",
    "Conversion",
    "Customer",
    "Program",
    "Referral",
    "ReferralCode",
    "Signup",
    "utcnow",
]
