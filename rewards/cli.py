"""`flask --app wsgi rewards ...`: the operator's commands (API.md, Command line)."""

import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from rewards.errors import ServiceError
from rewards.people.accounts import create_account
from rewards.people.apikeys import create_api_key
from rewards.people.programs import create_program

rewards_cli = AppGroup("rewards", help="Referral rewards commands.")


def _fail(error: ServiceError):
    """Exit 1 with the error, or each error of an invalid policy document, on stderr."""
    for line in getattr(error, "errors", None) or [error.message]:
        click.echo(f"error: {line}", err=True)
    sys.exit(1)


def _read_json(path: str):
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        click.echo(f"error: {path} is not JSON: {error}", err=True)
        sys.exit(1)


@rewards_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True,
              type=click.Choice(["admin", "coordinator", "marketing", "customer"]))
@click.option("--name", default=None)
def create_user_command(email, password, role, name):
    """Create a login with a role."""
    try:
        account = create_account(email, password, role, name)
    except ServiceError as error:
        _fail(error)
    click.echo(f"created {account.role} {account.email}")


@rewards_cli.command("create-api-key")
@click.option("--name", required=True)
def create_api_key_command(name):
    """Print a new API key once; only its hash is stored."""
    try:
        row, key = create_api_key(name)
    except ServiceError as error:
        _fail(error)
    click.echo(f"API key '{row.name}' created. It is shown once; store it now:")
    click.echo(key)


@rewards_cli.command("create-program")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--currency", required=True)
@click.option("--window-days", default=30, show_default=True, type=int)
@click.option("--attribution", default="last", show_default=True,
              type=click.Choice(["last", "first"]))
@click.option("--destination", default=None, help="Where a click lands; on its own domain.")
@click.option("--payout-schedule", default="on_demand", show_default=True,
              type=click.Choice(["on_demand", "weekly", "monthly"]),
              help="How often payouts are proposed.")
@click.option("--payout-minimum", default=0, show_default=True, type=click.IntRange(min=0),
              metavar="AMOUNT",
              help="In minor units (USD cents, JPY yen, KWD fils): payouts wait until "
                   "the balance reaches it.")
def create_program_command(slug, name, currency, window_days, attribution, destination,
                           payout_schedule, payout_minimum):
    """Create a program; the first one made is the default."""
    try:
        program = create_program(slug, name=name, currency=currency, window_days=window_days,
                                 attribution=attribution, destination_url=destination,
                                 payout_schedule=payout_schedule,
                                 payout_minimum=payout_minimum)
    except ServiceError as error:
        _fail(error)
    default = " (default)" if program.is_default else ""
    click.echo(f"created program {program.slug}{default}")


@rewards_cli.command("publish-policy")
@click.option("--program", "slug", required=True)
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
def publish_policy_command(slug, path):
    """Validate a policy document and publish it as the program's next version."""
    from rewards.people.programs import get_program
    from rewards.policies import cautions, parse_policy
    from rewards.policies.versions import publish

    document = _read_json(path)
    try:
        version = publish(get_program(slug), document)
    except ServiceError as error:
        _fail(error)
    for line in cautions(parse_policy(document)):
        click.echo(f"warning: {line}", err=True)
    click.echo(version.version)


@rewards_cli.command("check-ledger")
def check_ledger_command():
    """Verify the money invariants; exit 1 with a line per breach."""
    from rewards.ledger.check import check_ledger

    breaches = check_ledger()
    for breach in breaches:
        click.echo(f"BREACH {breach}")
    if breaches:
        sys.exit(1)
    click.echo("ledger ok")


@rewards_cli.command("seed-demo")
def seed_demo_command():
    """A demo program with customers, clicks, signups and purchases, and demo logins."""
    from rewards.demo import seed_demo

    made, logins = seed_demo()
    click.echo("Seeded the demo program." if made else "The demo program is already there.")
    click.echo("Demo logins (password for all: shown on each line):")
    for email, role, password in logins:
        click.echo(f"  {role:<12} {email:<28} {password}")


@rewards_cli.command("sweep")
def sweep_command():
    """Re-enqueue work that waited too long; safe to run any time."""
    from rewards.sweep import sweep

    result = sweep()
    click.echo(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in result.items()))


@rewards_cli.command("rebuild-rollups")
@click.option("--program", "slug", default=None, help="Only this program (default: all).")
def rebuild_rollups_command(slug):
    """Recount the dashboard's daily rollups from the raw rows, a month at a time."""
    from sqlalchemy import select

    from rewards.analytics.rollups import rebuild
    from rewards.extensions import db
    from rewards.models import Program

    query = select(Program.id)
    if slug:
        query = query.where(Program.slug == slug)
    program_ids = db.session.scalars(query).all()
    if slug and not program_ids:
        raise click.ClickException(f"No program with the slug {slug!r}.")
    bar = _ProgressBar("Recounting months")
    try:
        days = rebuild(program_ids, on_progress=bar.update)
    finally:
        bar.close()
    click.echo(f"Rollups rebuilt: {days} days in {len(program_ids)} program(s).")


@rewards_cli.command("stripe-replay")
@click.option("--since", required=True, metavar="YYYY-MM-DD",
              help="Read the events Stripe created on or after this day (UTC).")
def stripe_replay_command(since):
    """Read back the events Stripe holds since a day and store and process the missing ones.

    Events already stored are skipped, so running it twice changes nothing."""
    from datetime import UTC, datetime

    from rewards.stripe import gateway as stripe_gateway

    try:
        day = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        click.echo(f"error: --since {since!r} is not a date such as 2025-01-31.", err=True)
        sys.exit(1)
    if not stripe_gateway.configured():
        click.echo("error: Stripe is not configured: set STRIPE_API_KEY.", err=True)
        sys.exit(1)
    try:
        events = _read_stripe_events(int(day.timestamp()))
    except stripe_gateway.StripeFailure as failure:
        click.echo(f"error: Stripe refused to list the events: {failure}", err=True)
        sys.exit(1)
    new, stored, outcomes = _replay_events(events)
    click.echo(f"Read {len(events):,} event{'' if len(events) == 1 else 's'} from Stripe "
               f"since {day:%Y-%m-%d}: {new:,} new, {stored:,} already stored.")
    if outcomes:
        click.echo("Outcomes of the new events: " + ", ".join(
            f"{status}: {count:,}" for status, count in sorted(outcomes.items())))


def _read_stripe_events(since: int) -> list[dict]:
    """Every event since `since`, oldest first, so purchases come before their refunds."""
    from rewards.stripe.gateway import list_events

    events: list[dict] = []
    after = None
    while True:
        page, more = list_events(since, after)
        events += page
        click.echo(f"Read {len(events):,} events from Stripe...", err=True)
        if not more or not page:
            break
        after = page[-1]["id"]
    unique = {event["id"]: event for event in events}
    return sorted(unique.values(), key=lambda e: (e.get("created") or 0, e["id"]))


def _replay_events(events: list[dict]) -> tuple[int, int, dict[str, int]]:
    """Store each event once and process the new ones: (new, already stored, outcomes)."""
    from collections import Counter

    from rewards.extensions import db
    from rewards.models import StripeEvent
    from rewards.stripe.inbox import ingest, process

    new = stored = 0
    outcomes: Counter = Counter()
    with click.progressbar(events, label="Storing and processing events", file=sys.stderr,
                           show_pos=True) as bar:
        for event in bar:
            row, created = ingest(event)
            if not created:
                stored += 1
                continue
            new += 1
            row_id = row.id
            process(row_id)
            db.session.rollback()  # read the outcome as committed
            status = db.session.scalar(
                db.select(StripeEvent.status).where(StripeEvent.id == row_id))
            outcomes[status or "unknown"] += 1
    return new, stored, dict(outcomes)


@rewards_cli.command("simulate")
@click.option("--program", "slug", required=True)
@click.option("--draft", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The draft policy document (JSON).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365),
              help="Replay the purchases of the last N days.")
def simulate_command(slug, path, days):
    """Replay a draft policy over recent purchases and compare it with what was paid.

    Writes nothing."""
    from rewards.people.programs import get_program
    from rewards.policies.replay import simulate

    document = _read_json(path)
    bar = _ProgressBar("Replaying purchases")
    try:
        result = simulate(get_program(slug), document, days, progress=bar.update)
    except ServiceError as error:
        _fail(error)
    finally:
        bar.close()
    for line in simulation_table(result):
        click.echo(line)


class _ProgressBar:
    """A click progress bar on stderr, opened once the number of purchases is known."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.done = 0

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         show_pos=True)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _change(value: int | None, currency: str | None = None) -> str:
    """A change with its sign: "+$5.00", "-3", "0"; "—" when there is nothing to compare."""
    from rewards.money import format_money

    if value is None:
        return "—"
    text = format_money(value, currency) if currency else f"{value:,}"
    return f"+{text}" if value > 0 else text


def simulation_table(result) -> list[str]:
    """The simulation as lines of text: one block per currency, then the top referrers."""
    from rewards.money import format_money

    def money(value: int | None, currency: str) -> str:
        return "—" if value is None else format_money(value, currency)

    version = result.published_version
    lines = [
        f"Replayed {result.purchases:,} attributed purchase"
        f"{'' if result.purchases == 1 else 's'} of the last {result.days} days "
        f"({result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC).",
        "Published: what the ledger holds for the same purchases"
        + (f" (published version {version} now in force)." if version
           else " (no version published yet)."),
    ]
    if not result.currencies:
        lines.append("No attributed purchases in the period: nothing to compare.")
    for totals in result.currencies:
        cur = totals.currency
        rows = [
            ("cost", money(totals.actual_cost, cur), money(totals.draft_cost, cur),
             _change(totals.cost_delta, cur)),
            ("rewards", f"{totals.actual_rewards:,}", f"{totals.draft_rewards:,}",
             _change(totals.rewards_delta)),
            ("acquired customers", f"{totals.actual_customers:,}",
             f"{totals.draft_customers:,}", _change(totals.customers_delta)),
            ("cost per customer", money(totals.actual_per_customer, cur),
             money(totals.draft_per_customer, cur), _change(totals.per_customer_delta, cur)),
        ]
        lines.append("")
        lines.append(f"{cur.upper()} ({totals.purchases:,} purchases)")
        lines.append(f"  {'':<20}{'published':>16}{'draft':>16}{'change':>16}")
        for label, actual, draft, change in rows:
            lines.append(f"  {label:<20}{actual:>16}{draft:>16}{change:>16}")
    lines.append("")
    if not result.referrers:
        lines.append("No referrer's rewards change.")
        return lines
    lines.append("Referrers whose rewards change most (their own rewards, bonuses included)")
    lines.append(f"  {'referrer':<30}{'email':<26}{'published':>14}{'draft':>14}"
                 f"{'change':>14}")
    for row in result.referrers:
        who = " ".join(part for part in (f"#{row.referrer_id}", row.external_id, row.name)
                       if part)
        lines.append(f"  {who[:29]:<30}{row.email[:25]:<26}"
                     f"{format_money(row.actual, row.currency):>14}"
                     f"{format_money(row.draft, row.currency):>14}"
                     f"{_change(row.delta, row.currency):>14}")
    return lines
