"""The JSON shapes of API.md."""

from sqlalchemy import select

from rewards.analytics.stats import customer_counts
from rewards.extensions import db
from rewards.models import Balance, Conversion, Customer, Payout, Reward, Signup
from rewards.people.codes import primary_code, referral_url


def _external_id(customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    return db.session.get(Customer, customer_id).external_id


def customer(row: Customer, *, detail: bool = False) -> dict:
    code = primary_code(row)
    answer = {
        "id": row.id,
        "external_id": row.external_id,
        "program": row.program.slug,
        "referral_code": code.code if code else None,
        "referral_url": referral_url(code.code) if code else None,
    }
    if detail:
        answer["counts"] = customer_counts(row)
        answer["balances"] = balances(row.id)
    return answer


def signup(row: Signup) -> dict:
    referrer_id = row.referral.referrer_id if row.referral else None
    return {
        "referral_id": row.referral_id,
        "attributed": row.referral_id is not None,
        "referrer_external_id": _external_id(referrer_id),
        "reason": row.reason,
    }


def conversion(row: Conversion) -> dict:
    return {
        "conversion_id": row.id,
        "order_id": row.order_id,
        "amount": row.amount,
        "currency": row.currency,
        "occurred_at": row.occurred_at.isoformat(),
        "attributed": row.referrer_id is not None,
        "matched_by": row.matched_by,
        "referrer_external_id": _external_id(row.referrer_id),
        "reason": row.reason,
        "refunded_amount": row.refunded_amount,
        "rewards": [reward(line) for line in db.session.scalars(
            select(Reward).filter_by(conversion_id=row.id).order_by(Reward.id))],
    }


def reward(line: Reward) -> dict:
    return {
        "id": line.id,
        "beneficiary": _external_id(line.customer_id),
        "role": line.role,
        "amount": line.amount,
        "reversed_amount": line.reversed_amount,
        "currency": line.currency,
        "status": line.status,
        "rule": line.rule,
        "policy_version": line.policy_version.version,
        "explanation": line.explanation,
        "available_at": line.available_at.isoformat(),
    }


def balances(customer_id: int) -> dict:
    return {
        row.currency: row.as_dict()
        for row in db.session.scalars(
            select(Balance).filter_by(customer_id=customer_id).order_by(Balance.currency))
    }


def payout(row: Payout) -> dict:
    return {
        "id": row.id,
        "customer": row.customer.external_id,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "method": row.method,
        "reference": row.reference,
        "created_at": row.created_at.isoformat(),
        "paid_at": row.paid_at.isoformat() if row.paid_at else None,
    }
