"""All tables, grouped by domain, with the status sets their constraints enforce.
Importing this module registers the tables with the metadata."""

from rewards.models.audit import AuditEntry
from rewards.models.fraud import SIGNAL_STATUSES, FraudSignal, KnownVisitor
from rewards.models.ledger import (
    BALANCE_COLUMNS,
    HOLDABLE,
    LIVE_REWARDS,
    PAID_REWARDS,
    REWARD_STATUSES,
    UNPAID_REWARDS,
    Adjustment,
    Balance,
    Refund,
    Reward,
)
from rewards.models.payouts import (
    LIVE_PAYOUT,
    PAYOUT_METHODS,
    PAYOUT_STATUSES,
    REJECTABLE_PAYOUT,
    RETRYABLE_PAYOUT,
    Payout,
    PayoutApproval,
)
from rewards.models.people import ROLES, STAFF_ROLES, Account, ApiKey, Customer
from rewards.models.policies import PolicyDraft, PolicyVersion
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
from rewards.models.stripe import (
    CLAIMABLE_EVENT,
    EVENT_STATUSES,
    FINAL_EVENT,
    Dispute,
    StripeEvent,
)
from rewards.models.types import utcnow

__all__ = [
    "ATTRIBUTION_MODELS", "BALANCE_COLUMNS", "CLAIMABLE_EVENT", "EVENT_STATUSES", "FINAL_EVENT",
    "HOLDABLE", "LIVE_PAYOUT", "LIVE_REWARDS", "MATCHED_BY", "PAID_REWARDS", "PAYOUT_METHODS",
    "PAYOUT_SCHEDULES", "PAYOUT_STATUSES", "REJECTABLE_PAYOUT", "RETRYABLE_PAYOUT",
    "REWARD_STATUSES", "ROLES", "SIGNAL_STATUSES", "STAFF_ROLES", "UNPAID_REWARDS", "Account",
    "Adjustment", "ApiKey", "AuditEntry", "Balance", "Click", "Conversion", "Customer",
    "DailyChannel", "DailyHost", "DailyReferrerTally", "DailyRewards", "DailySales",
    "DailyTraffic", "Dispute", "FraudSignal", "KnownVisitor", "Payout", "PayoutApproval",
    "PolicyDraft", "PolicyVersion", "Program", "Referral", "ReferralCode", "Refund", "Reward",
    "RollupMark", "Signup", "StripeEvent", "utcnow",
]
