"""The marketing dashboard's figures, read from the daily rollups only.

Every query here is bounded by the number of days (and programs) shown, never by the
number of clicks. Amounts stay per currency; ratios are computed per currency too.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

from rewards.analytics import sketches, tallies
from rewards.extensions import db
from rewards.models import LIVE_REWARDS, REWARD_STATUSES, Customer
from rewards.models.rollups import (
    DailyChannel,
    DailyHost,
    DailyReferrerTally,
    DailyRewards,
    DailySales,
    DailyTraffic,
)

TOP = 10


@dataclass(frozen=True)
class Scope:
    """Which programs (None: all of them) over which days, both ends included."""

    program_ids: tuple[int, ...] | None
    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def where(self, table) -> list:
        clauses = [table.day >= self.start, table.day <= self.end]
        if self.program_ids is not None:
            clauses.append(table.program_id.in_(self.program_ids))
        return clauses


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _divide(amount: int, by: int) -> int | None:
    """Minor units divided and rounded half up once, for display (cost per customer)."""
    if not by:
        return None
    return int((Decimal(amount) / Decimal(by)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def traffic(scope: Scope) -> dict:
    keys = ("clicks", "signups", "referred_signups", "clicked_signups", "converted_signups")
    series = {day: dict.fromkeys(keys, 0) for day in scope.days}
    sketch_rows = []
    for row in db.session.execute(
        select(DailyTraffic.day, DailyTraffic.visitors,
               *(getattr(DailyTraffic, key) for key in keys))
        .where(*scope.where(DailyTraffic))
    ):
        point = series[row.day]
        for key in keys:
            point[key] += getattr(row, key)
        sketch_rows.append(row.visitors)
    totals = {key: sum(point[key] for point in series.values()) for key in keys}
    totals["visitors"] = sketches.count(sketch_rows)
    return {"totals": totals, "series": series}


def sales(scope: Scope) -> dict:
    """Per currency: purchases, new customers, revenue, refunds, and a daily series."""
    currencies: dict[str, dict] = {}
    series: dict[date, dict] = {day: {"purchases": 0, "revenue": {}} for day in scope.days}
    for day, currency, purchases, new, revenue, refunded in db.session.execute(
        select(DailySales.day, DailySales.currency, func.sum(DailySales.purchases),
               func.sum(DailySales.new_customers), func.sum(DailySales.revenue),
               func.sum(DailySales.refunded))
        .where(*scope.where(DailySales)).group_by(DailySales.day, DailySales.currency)
    ):
        row = currencies.setdefault(currency, {"currency": currency, "purchases": 0,
                                               "new_customers": 0, "revenue": 0,
                                               "refunded": 0})
        row["purchases"] += int(purchases)
        row["new_customers"] += int(new)
        row["revenue"] += int(revenue)
        row["refunded"] += int(refunded)
        series[day]["purchases"] += int(purchases)
        series[day]["revenue"][currency] = int(revenue) - int(refunded)
    return {"currencies": currencies, "series": series}


def reward_cost(scope: Scope) -> dict[str, dict]:
    """Per currency: rewards and amounts by status, clawbacks, and the cost they add up to.

    A live reward costs what it earned less what was reversed; reversed and rejected
    rewards cost nothing; clawbacks owed back after payment reduce the cost.
    """
    out: dict[str, dict] = {}
    for currency, status, rewards, amount, reversed_, clawed in db.session.execute(
        select(DailyRewards.currency, DailyRewards.status, func.sum(DailyRewards.rewards),
               func.sum(DailyRewards.amount), func.sum(DailyRewards.reversed),
               func.sum(DailyRewards.clawed_back))
        .where(*scope.where(DailyRewards))
        .group_by(DailyRewards.currency, DailyRewards.status)
    ):
        row = out.setdefault(currency, {
            "statuses": {s: {"rewards": 0, "amount": 0} for s in REWARD_STATUSES},
            "reversed": 0, "clawed_back": 0, "cost": 0})
        net = int(amount) - int(reversed_)
        row["statuses"][status] = {"rewards": int(rewards),
                                   "amount": net if status != "reversed" else 0}
        row["reversed"] += int(reversed_)
        row["clawed_back"] += int(clawed)
        if status in LIVE_REWARDS:
            row["cost"] += net
        row["cost"] -= int(clawed)
    return out


def short_name(customer_id: int, name: str | None) -> str:
    """"Maria L.": enough for marketing to tell referrers apart, no more."""
    words = (name or "").split()
    if not words:
        return f"Customer #{customer_id}"
    return words[0] if len(words) == 1 else f"{words[0]} {words[-1][0]}."


def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {cid: short_name(cid, name) for cid, name in db.session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(ids)))}


def top_referrers(scope: Scope, limit: int = TOP) -> dict:
    """The referrers with most purchases, and per currency those with most net revenue.

    One read of a tally per day and currency, summed per referrer and ranked with numpy.
    """
    days: dict[str, list] = defaultdict(list)
    for currency, tally in db.session.execute(
        select(DailyReferrerTally.currency, DailyReferrerTally.tally)
        .where(*scope.where(DailyReferrerTally))
    ):
        days[currency].append(tallies.unpack(tally))
    per_currency = {currency: tallies.combine(tables) for currency, tables in days.items()}
    by_purchases = tallies.ranked(
        tallies.combine(table[:2] for table in per_currency.values()), 1, limit)
    by_revenue = {currency: tallies.ranked(table, 2, limit)
                  for currency, table in sorted(per_currency.items())}
    names = _names({r for r, _ in by_purchases}
                   | {r for rows in by_revenue.values() for r, _, _ in rows})
    return {
        "by_purchases": [{"referrer_id": r, "name": names.get(r, f"Customer #{r}"),
                          "purchases": n} for r, n in by_purchases],
        "by_revenue": {
            currency: [{"referrer_id": r, "name": names.get(r, f"Customer #{r}"),
                        "purchases": n, "revenue": revenue} for r, n, revenue in rows]
            for currency, rows in by_revenue.items()},
    }


def sources(scope: Scope, limit: int = TOP) -> dict:
    """Clicks by referring host (the rest summed as "other") and by share channel."""
    hosts = db.session.execute(
        select(DailyHost.host, func.sum(DailyHost.clicks))
        .where(*scope.where(DailyHost)).group_by(DailyHost.host)
        .order_by(func.sum(DailyHost.clicks).desc(), DailyHost.host)
    ).all()
    channels = db.session.execute(
        select(DailyChannel.channel, func.sum(DailyChannel.clicks))
        .where(*scope.where(DailyChannel)).group_by(DailyChannel.channel)
        .order_by(func.sum(DailyChannel.clicks).desc(), DailyChannel.channel)
    ).all()
    top = [{"host": host, "clicks": int(n)} for host, n in hosts[:limit]]
    rest = sum(int(n) for _, n in hosts[limit:])
    if rest:
        top.append({"host": None, "clicks": rest})
    return {"hosts": top, "channels": [{"channel": c, "clicks": int(n)} for c, n in channels]}


def previous(scope: Scope) -> Scope:
    """The as many days just before the scope's, of the same programs."""
    days = scope.end - scope.start + timedelta(days=1)
    return Scope(scope.program_ids, scope.start - days, scope.end - days)


def _headline(visits: dict, sold: dict) -> dict:
    """The totals of the page's top cards, from `traffic()` and `sales()`."""
    totals = visits["totals"]
    currencies = sold["currencies"].values()
    return {
        **totals,
        "purchases": sum(row["purchases"] for row in currencies),
        "new_customers": sum(row["new_customers"] for row in currencies),
        # Signups that followed a click, per click; and of the friends who signed up in the
        # range, the share who have bought since (never over 100%).
        "click_to_signup": _ratio(totals["clicked_signups"], totals["clicks"]),
        "signup_to_purchase": _ratio(totals["converted_signups"], totals["referred_signups"]),
    }


def report(scope: Scope) -> dict:
    """Everything the dashboard shows for the scope, and the top cards' totals over the
    days just before it, to compare with."""
    visits = traffic(scope)
    sold = sales(scope)
    costs = reward_cost(scope)
    totals = _headline(visits, sold)
    before = previous(scope)
    currencies = []
    for currency in sorted(set(sold["currencies"]) | set(costs)):
        row = dict(sold["currencies"].get(currency) or {
            "currency": currency, "purchases": 0, "new_customers": 0, "revenue": 0,
            "refunded": 0})
        cost = costs.get(currency)
        row["net_revenue"] = row["revenue"] - row["refunded"]
        row["rewards"] = cost
        row["reward_cost"] = cost["cost"] if cost else 0
        row["cost_per_customer"] = _divide(row["reward_cost"], row["new_customers"])
        row["return_on_spend"] = _ratio(row["net_revenue"], row["reward_cost"])
        currencies.append(row)
    series = [{"day": day, **visits["series"][day], "purchases": sold["series"][day]["purchases"],
               "revenue": sold["series"][day]["revenue"]} for day in scope.days]
    return {
        "scope": scope,
        "totals": totals,
        "before": {"scope": before, "totals": _headline(traffic(before), sales(before))},
        "funnel": [("Clicks", totals["clicks"]), ("Unique visitors", totals["visitors"]),
                   ("Referred signups", totals["referred_signups"]),
                   ("Friends who bought", totals["new_customers"])],
        "currencies": currencies,
        "series": series,
        "top": top_referrers(scope),
        "sources": sources(scope),
    }
