"""Replaying a draft policy over recent purchases and comparing it with what was paid.

`simulate(program, document, days)` validates the draft, loads the program's attributed
purchases of the last `days` days and everything their evaluation needs (`window`), then
replays them in time order through the pure `evaluate`, keeping each referrer's `History`
in memory as the ledger would have kept it (`state`). It writes nothing.

- A friend is "rewarded before" when a live friend line exists before the purchase (an
  actual one before the window, or a draft one in it).
- Refunds act on the history from when they were recorded: a purchase sees the refunds
  recorded before it was processed (its `processed_at`, or its `created_at` before that),
  as the reward job would have.
- Costs are net: a line's amount less what refunds take back (reversals and clawbacks
  for the actual lines; the pro rata share for the draft ones). Rewards are counted
  line by line, rejected actual lines left out. Currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Program, utcnow
from rewards.policies.evaluate import Purchase, evaluate
from rewards.policies.months import month_start
from rewards.policies.policy import Policy
from rewards.policies.replay.actual import add_actual
from rewards.policies.replay.results import CurrencyComparison, SimulationResult, per_customer
from rewards.policies.replay.state import DraftLedger
from rewards.policies.replay.top_referrers import top_referrers
from rewards.policies.replay.window import load_window
from rewards.policies.rounding import pro_rata
from rewards.policies.versions import check_document, current_version

MAX_DAYS = 365
PROGRESS_EVERY = 1000

Progress = Callable[[int, int], None]


def simulate(program: Program, document: object, days: int,
             progress: Progress | None = None) -> SimulationResult:
    """Replay `document` over the program's attributed purchases of the last `days` days.

    Raises InvalidPolicy (with `.errors`) for an invalid draft and ServiceError for a
    period outside 1..365 days. Reads only, in a few queries whatever the number of
    purchases; the session is rolled back at the end, so call it with nothing pending.
    `progress(done, total)` is called at the start, every 1,000 purchases and at the end.
    """
    policy = check_document(program, document)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ServiceError(f"The period must be 1 to {MAX_DAYS} days.", field="days")
    try:
        return _simulate(program, policy, days, progress)
    finally:
        db.session.rollback()


def _simulate(program: Program, policy: Policy, days: int,
              progress: Progress | None) -> SimulationResult:
    until = utcnow()
    since = until - timedelta(days=days)
    first_month = month_start(since)
    version = current_version(program.id)
    window = load_window(program.id, since, first_month)
    ledger = DraftLedger(window.referrers, (first_month.year, first_month.month),
                         window.refunds)
    prior = window.prior
    rewarded_before = window.rewarded_before

    by_currency: dict[str, CurrencyComparison] = {}
    draft_customers: dict[str, set[int]] = {}
    draft_by_referrer: dict[tuple[int, str], int] = {}
    replayed = 0
    rows = window.purchases
    total = len(rows)
    if progress:
        progress(0, total)

    for done, row in enumerate(rows, start=1):
        (conversion_id, friend, amount, currency, occurred, refunded, referrer,
         signed_up, processed_at) = row
        earlier = prior.get(friend, 0)
        prior[friend] = earlier + 1
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
        if referrer is None:
            continue
        replayed += 1

        # Refunds recorded before this purchase was processed are in its history.
        ledger.refunds_until(processed_at)

        key = (referrer, currency)
        state = ledger.referrer(key)
        month = (occurred.year, occurred.month)
        evaluation = evaluate(policy, Purchase(
            amount=amount, currency=currency, occurred_at=occurred, friend_id=friend,
            friend_signed_up_at=signed_up, friend_prior_purchases=earlier,
            friend_rewarded_before=friend in rewarded_before or ledger.friend_rewarded(friend),
        ), state.history(month))

        totals = by_currency.get(currency)
        if totals is None:
            totals = by_currency[currency] = CurrencyComparison(currency)
            draft_customers[currency] = set()
        totals.purchases += 1
        decisions = evaluation.decisions
        if not decisions:
            continue
        draft_customers[currency].add(friend)
        lines = ledger.refunded_lines(conversion_id, amount) if refunded else None
        for decision in decisions:
            value = decision.amount
            net = value - pro_rata(value, refunded, amount) if refunded else value
            totals.draft_cost += net
            totals.draft_rewards += 1
            if decision.role == "referrer":
                ledger.add(state, friend, month, value, decision.rule.startswith("milestones"),
                           lines)
                draft_by_referrer[key] = draft_by_referrer.get(key, 0) + net
            else:
                ledger.add(None, friend, month, value, False, lines)
        ledger.replayed(conversion_id)
    if progress and total % PROGRESS_EVERY:
        progress(total, total)

    # --- what was actually paid for the same purchases
    actual_by_referrer = add_actual(window.attributed, by_currency)

    currencies = sorted(by_currency.values(),
                        key=lambda c: (c.currency != program.currency, c.currency))
    for totals in currencies:
        totals.draft_customers = len(draft_customers.get(totals.currency, ()))
        totals.draft_per_customer = per_customer(totals.draft_cost, totals.draft_customers)
        totals.actual_per_customer = per_customer(totals.actual_cost, totals.actual_customers)

    return SimulationResult(
        program_id=program.id, days=days, since=since, until=until, purchases=replayed,
        published_version=version.version if version else None, currencies=currencies,
        referrers=top_referrers(draft_by_referrer, actual_by_referrer),
    )
