"""All tables, grouped by domain. Importing this module registers them with the metadata."""

from rewards.models.drafts import PolicyDraft
from rewards.models.ledger import (
    BALANCE_COLUMNS,
    REWARD_STATUSES,
    Adjustment,
    Balance,
    PolicyVersion,
    Refund,
    Reward,
)
from rewards.models.payouts import (
    LIVE_PAYOUT,
    PAYOUT_METHODS,
    PAYOUT_STATUSES,
    AuditEntry,
    FraudSignal,
    KnownVisitor,
    Payout,
    PayoutApproval,
)
from rewards.models.people import ROLES, STAFF_ROLES, Account, ApiKey, Customer
from rewards.models.programs import ATTRIBUTION_MODELS, PAYOUT_SCHEDULES, Program
from rewards.models.referrals import MATCHED_BY, Click, Conversion, Referral, ReferralCode, Signup
from rewards.models.rollups import (
    DailyChannel,
    DailyHost,
    DailyReferrerTally,
    DailyRewards,
    DailySales,
    DailyTraffic,
    RollupMark,
)
from rewards.models.stripe import EVENT_STATUSES, Dispute, StripeEvent
from rewards.models.types import utcnow

__all__ = [
    "ATTRIBUTION_MODELS", "BALANCE_COLUMNS", "EVENT_STATUSES", "LIVE_PAYOUT", "MATCHED_BY",
    "PAYOUT_METHODS", "PAYOUT_SCHEDULES", "PAYOUT_STATUSES", "REWARD_STATUSES", "ROLES",
    "STAFF_ROLES", "Account", "Adjustment", "ApiKey", "AuditEntry", "Balance", "Click",
    "Conversion", "Customer", "DailyChannel", "DailyHost", "DailyReferrerTally", "DailyRewards",
    "DailySales", "DailyTraffic", "Dispute", "FraudSignal", "KnownVisitor", "Payout",
    "PayoutApproval", "PolicyDraft", "PolicyVersion", "Program", "Referral", "ReferralCode",
    "Refund", "Reward", "RollupMark", "Signup", "StripeEvent", "utcnow",
]
