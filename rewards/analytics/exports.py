"""The marketing dashboard's CSV exports: its tables, and the raw rows of the range.

Tables are rewritten from `dashboard.report(scope)`, so a file holds exactly the figures
the page shows. Raw referrals, purchases and rewards are read straight from their tables
and streamed (`yield_per`), so a large range is never held in memory.

Conventions, the same in every file:
- amounts are decimal numbers in major units with the currency's decimals (12050 usd is
  `120.50`, 500 jpy is `500`), next to a `currency` column (upper case, `USD`) or in a
  column named for their currency (`revenue_usd`); never summed across currencies;
- ratios have four decimals (`2.5000`); an empty cell means "no figure" (nothing to divide
  by);
- times are ISO 8601 in UTC (`2026-01-31T14:05:09Z`), days are UTC days;
- people are customer ids, names as the dashboard shows them (first name and last
  initial, `Maria L.`) and masked emails (`m***@example.com`); no full name or email, IP
  hash, user agent or card fingerprint leaves in a marketing export.
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import aliased

from rewards.analytics.dashboard import Scope, short_name
from rewards.analytics.rollups import day_start
from rewards.extensions import db
from rewards.models import (
    REWARD_STATUSES,
    Conversion,
    Customer,
    PolicyVersion,
    Program,
    Referral,
    Reward,
)
from rewards.money import major_amount
from rewards.privacy import mask_email

BATCH = 1000
Rows = Iterable[tuple]


def _money(amount: int | None, currency: str) -> Decimal | str:
    return "" if amount is None else major_amount(amount, currency)


def _ratio(value: float | None) -> Decimal | str:
    if value is None:
        return ""
    return Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


# --- The dashboard's tables ----------------------------------------------------------------

def _daily(report: dict) -> tuple[list[str], Rows]:
    """One line per day; net revenue (gross less refunds) in one column per currency."""
    currencies = sorted({c for point in report["series"] for c in point["revenue"]})
    header = ["day", "clicks", "signups", "referred_signups", "purchases",
              *(f"revenue_{currency}" for currency in currencies)]
    rows = [(point["day"].isoformat(), point["clicks"], point["signups"],
             point["referred_signups"], point["purchases"],
             *(major_amount(point["revenue"].get(currency, 0), currency)
               for currency in currencies))
            for point in report["series"]]
    return header, rows


def _funnel(report: dict) -> tuple[list[str], Rows]:
    return ["step", "count"], list(report["funnel"])


def _currencies(report: dict) -> tuple[list[str], Rows]:
    header = ["currency", "purchases", "new_customers", "revenue", "refunded", "net_revenue",
              "reward_cost", "cost_per_customer", "return_on_spend"]
    rows = []
    for row in report["currencies"]:
        currency = row["currency"]
        rows.append((currency.upper(), row["purchases"], row["new_customers"],
                     _money(row["revenue"], currency), _money(row["refunded"], currency),
                     _money(row["net_revenue"], currency),
                     _money(row["reward_cost"], currency),
                     _money(row["cost_per_customer"], currency),
                     _ratio(row["return_on_spend"])))
    return header, rows


def _rewards(report: dict) -> tuple[list[str], Rows]:
    """Per currency: rewards and their net amount by status, then what refunds reversed
    before payment, what was clawed back after it, and the cost they come to."""
    rows = []
    for row in report["currencies"]:
        currency = row["currency"]
        cost = row["rewards"] or {"statuses": {}, "reversed": 0, "clawed_back": 0}
        for status in REWARD_STATUSES:
            line = cost["statuses"].get(status) or {"rewards": 0, "amount": 0}
            rows.append((currency.upper(), status, line["rewards"],
                         _money(line["amount"], currency)))
        rows.append((currency.upper(), "reversed_by_refunds", "",
                     _money(cost["reversed"], currency)))
        rows.append((currency.upper(), "clawed_back", "", _money(cost["clawed_back"], currency)))
        rows.append((currency.upper(), "total_cost", "", _money(row["reward_cost"], currency)))
    return ["currency", "status", "rewards", "amount"], rows


def _top_purchases(report: dict) -> tuple[list[str], Rows]:
    return (["rank", "referrer_id", "name", "purchases"],
            [(rank, line["referrer_id"], line["name"], line["purchases"])
             for rank, line in enumerate(report["top"]["by_purchases"], 1)])


def _top_revenue(report: dict) -> tuple[list[str], Rows]:
    return (["currency", "rank", "referrer_id", "name", "purchases", "revenue"],
            [(currency.upper(), rank, line["referrer_id"], line["name"], line["purchases"],
              major_amount(line["revenue"], currency))
             for currency, lines in sorted(report["top"]["by_revenue"].items())
             for rank, line in enumerate(lines, 1)])


UNKNOWN = "(none)"  # a click without a referring host or share channel
OTHER_HOSTS = "(other)"  # the hosts below the dashboard's top ten, summed


def _hosts(report: dict) -> tuple[list[str], Rows]:
    return (["host", "clicks"],
            [(OTHER_HOSTS if line["host"] is None else (line["host"] or UNKNOWN),
              line["clicks"]) for line in report["sources"]["hosts"]])


def _channels(report: dict) -> tuple[list[str], Rows]:
    return (["channel", "clicks"],
            [(line["channel"] or UNKNOWN, line["clicks"])
             for line in report["sources"]["channels"]])


TABLES: dict[str, Callable[[dict], tuple[list[str], Rows]]] = {
    "daily": _daily, "funnel": _funnel, "currencies": _currencies, "rewards": _rewards,
    "top-purchases": _top_purchases, "top-revenue": _top_revenue, "hosts": _hosts,
    "channels": _channels,
}


def table(name: str, report: dict) -> tuple[list[str], Rows]:
    """The header and rows of one dashboard table (`name` in TABLES) of `report`."""
    return TABLES[name](report)


# --- Raw rows of the range ----------------------------------------------------------------

def _within(column, model, scope: Scope) -> list:
    """The moment falls on one of the scope's UTC days, in one of its programs."""
    clauses = [column >= day_start(scope.start),
               column < day_start(scope.end + timedelta(days=1))]
    if scope.program_ids is not None:
        clauses.append(model.program_id.in_(scope.program_ids))
    return clauses


REFERRALS_HEADER = ("id", "program", "created_at", "referrer_id", "referrer_name", "friend_id",
                    "friend_name", "friend_email", "matched_by", "reason")


def referrals(scope: Scope, batch: int = BATCH) -> Iterator[tuple]:
    """Referrals made in the range (a friend tied to their referrer), oldest first."""
    referrer, friend = aliased(Customer), aliased(Customer)
    stmt = (select(Referral.id, Program.slug, Referral.created_at, Referral.referrer_id,
                   referrer.name, Referral.friend_id, friend.name, friend.email,
                   Referral.matched_by, Referral.reason)
            .join(Program, Program.id == Referral.program_id)
            .join(referrer, referrer.id == Referral.referrer_id)
            .join(friend, friend.id == Referral.friend_id)
            .where(*_within(Referral.created_at, Referral, scope))
            .order_by(Referral.created_at, Referral.id)
            .execution_options(yield_per=batch))
    for (id_, slug, created_at, referrer_id, referrer_name, friend_id, friend_name,
         friend_email, matched_by, reason) in db.session.execute(stmt):
        yield (id_, slug, _iso(created_at), referrer_id, short_name(referrer_id, referrer_name),
               friend_id, short_name(friend_id, friend_name), mask_email(friend_email),
               matched_by, reason)


PURCHASES_HEADER = ("id", "program", "occurred_at", "order_id", "source", "customer_id",
                    "referrer_id", "amount", "refunded", "currency", "matched_by",
                    "matched_via")


def purchases(scope: Scope, batch: int = BATCH) -> Iterator[tuple]:
    """Purchases made in the range, referred or not, oldest first."""
    stmt = (select(Conversion.id, Program.slug, Conversion.occurred_at, Conversion.order_id,
                   Conversion.source, Conversion.customer_id, Conversion.referrer_id,
                   Conversion.amount, Conversion.refunded_amount, Conversion.currency,
                   Conversion.matched_by, Conversion.matched_via)
            .join(Program, Program.id == Conversion.program_id)
            .where(*_within(Conversion.occurred_at, Conversion, scope))
            .order_by(Conversion.occurred_at, Conversion.id)
            .execution_options(yield_per=batch))
    for (id_, slug, occurred_at, order_id, source, customer_id, referrer_id, amount,
         refunded, currency, matched_by, matched_via) in db.session.execute(stmt):
        yield (id_, slug, _iso(occurred_at), order_id, source, customer_id,
               referrer_id or "", major_amount(amount, currency),
               major_amount(refunded, currency), currency.upper(), matched_by or "",
               matched_via or "")


REWARDS_HEADER = ("id", "program", "occurred_at", "beneficiary_id", "beneficiary_name", "role",
                  "rule", "policy_version", "amount", "reversed", "net", "currency", "status",
                  "explanation")


def rewards(scope: Scope, batch: int = BATCH) -> Iterator[tuple]:
    """Rewards of the purchases made in the range, in the order of those purchases."""
    stmt = (select(Reward.id, Program.slug, Reward.occurred_at, Reward.customer_id,
                   Customer.name, Reward.role, Reward.rule, PolicyVersion.version,
                   Reward.amount, Reward.reversed_amount, Reward.currency, Reward.status,
                   Reward.explanation)
            .join(Program, Program.id == Reward.program_id)
            .join(Customer, Customer.id == Reward.customer_id)
            .join(PolicyVersion, PolicyVersion.id == Reward.policy_version_id)
            .where(*_within(Reward.occurred_at, Reward, scope))
            .order_by(Reward.occurred_at, Reward.id)
            .execution_options(yield_per=batch))
    for (id_, slug, occurred_at, customer_id, name, role, rule, version, amount, reversed_,
         currency, status, explanation) in db.session.execute(stmt):
        yield (id_, slug, _iso(occurred_at), customer_id, short_name(customer_id, name), role,
               rule, version,
               major_amount(amount, currency), major_amount(reversed_, currency),
               major_amount(amount - reversed_, currency), currency.upper(), status,
               explanation)


RAW: dict[str, tuple[tuple[str, ...], Callable[[Scope], Iterator[tuple]]]] = {
    "referrals": (REFERRALS_HEADER, referrals),
    "purchases": (PURCHASES_HEADER, purchases),
    "rewards": (REWARDS_HEADER, rewards),
}
