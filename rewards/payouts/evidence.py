"""One payout as the coordinator reviews it: its rewards, clawbacks netted, approvals,
the customer's rewards held outside it, and the evidence behind each referral (the
click, the signup, the purchases and the fraud signals). Read only."""

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import aliased

from rewards.extensions import db
from rewards.models import (
    LIVE_PAYOUT,
    Adjustment,
    Click,
    Conversion,
    Customer,
    FraudSignal,
    Payout,
    PayoutApproval,
    Program,
    Referral,
    Reward,
    Signup,
)


@dataclass
class Evidence:
    """The chain behind one referral: the click, the signup, the purchases, the signals."""

    referral: Referral
    friend_email: str | None  # the raw email; templates show it masked
    click: Click | None
    signup: Signup | None
    purchases: list[Conversion]
    signals: list[FraudSignal]

    @property
    def open_signals(self) -> list[FraudSignal]:
        return [s for s in self.signals if s.status == "open"]


@dataclass
class RewardLine:
    reward: Reward
    referral_id: int | None


@dataclass
class PayoutDetail:
    payout: Payout
    customer: Customer
    program: Program
    approvals: list[PayoutApproval]
    needed: int
    rewards: list[RewardLine]
    netted: list[Adjustment]
    held: list[RewardLine]  # the customer's rewards on hold, outside this payout
    evidence: dict[int, Evidence]  # by referral id

    @property
    def open_signals(self) -> int:
        return sum(len(e.open_signals) for e in self.evidence.values())

    def approved_by(self, account_id: int) -> bool:
        return any(a.account_id == account_id for a in self.approvals)


def detail(payout_id: int) -> PayoutDetail | None:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return None
    rewards = db.session.scalars(
        select(Reward).where(Reward.payout_id == payout.id).order_by(Reward.id)).all()
    held = []
    if payout.status in LIVE_PAYOUT:
        held = db.session.scalars(
            select(Reward).where(Reward.customer_id == payout.customer_id,
                                 Reward.currency == payout.currency,
                                 Reward.program_id == payout.program_id,
                                 Reward.status == "on_hold").order_by(Reward.id)).all()
    netted = db.session.scalars(
        select(Adjustment).where(Adjustment.payout_id == payout.id).order_by(Adjustment.id)
    ).all()
    approvals = db.session.scalars(
        select(PayoutApproval).where(PayoutApproval.payout_id == payout.id)
        .order_by(PayoutApproval.id)).all()
    referral_of = _referrals_of([*rewards, *held])
    return PayoutDetail(
        payout=payout, customer=payout.customer, program=payout.program,
        approvals=list(approvals), needed=2 if payout.needs_two_approvals else 1,
        rewards=[RewardLine(r, referral_of.get(r.id)) for r in rewards],
        netted=list(netted),
        held=[RewardLine(r, referral_of.get(r.id)) for r in held],
        evidence=evidence(set(referral_of.values()), [*rewards, *held]),
    )


def _referrals_of(rewards: list[Reward]) -> dict[int, int]:
    """reward id -> the referral behind it (through its purchase)."""
    if not rewards:
        return {}
    rows = db.session.execute(
        select(Reward.id, Conversion.referral_id)
        .join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Reward.id.in_([r.id for r in rewards]), Conversion.referral_id.is_not(None))
    ).all()
    return dict(rows)


def evidence(referral_ids: set[int], rewards: list[Reward]) -> dict[int, Evidence]:
    """The evidence chain of each referral; the purchases listed are those behind
    `rewards` (not every purchase the friend ever made)."""
    if not referral_ids:
        return {}
    ids = sorted(referral_ids)
    friend = aliased(Customer)
    referrals = db.session.execute(
        select(Referral, friend.email).join(friend, friend.id == Referral.friend_id)
        .where(Referral.id.in_(ids)).order_by(Referral.id)).all()
    click_ids = [r.click_id for r, _ in referrals if r.click_id]
    clicks = {c.id: c for c in db.session.scalars(select(Click).where(Click.id.in_(click_ids)))} \
        if click_ids else {}
    signups = {s.customer_id: s for s in db.session.scalars(
        select(Signup).where(Signup.customer_id.in_([r.friend_id for r, _ in referrals])))}
    conversion_ids = {r.conversion_id for r in rewards}
    purchases = defaultdict(list)
    for conversion in db.session.scalars(
            select(Conversion).where(Conversion.id.in_(conversion_ids),
                                     Conversion.referral_id.in_(ids))
            .order_by(Conversion.occurred_at, Conversion.id)):
        purchases[conversion.referral_id].append(conversion)
    signals = defaultdict(list)
    for signal in db.session.scalars(
            select(FraudSignal).where(FraudSignal.referral_id.in_(ids))
            .order_by(FraudSignal.id)):
        signals[signal.referral_id].append(signal)
    return {
        referral.id: Evidence(referral=referral, friend_email=email,
                              click=clicks.get(referral.click_id),
                              signup=signups.get(referral.friend_id),
                              purchases=purchases[referral.id],
                              signals=signals[referral.id])
        for referral, email in referrals
    }
