"""`flask --app wsgi rewards ...`: the operator's commands (API.md, Command line)."""

import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from .services.accounts import create_account
from .services.apikeys import create_api_key
from .services.errors import ServiceError
from .services.programs import create_program

rewards_cli = AppGroup("rewards", help="Referral rewards commands.")


def _fail(error: ServiceError):
    click.echo(f"error: {error.message}", err=True)
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
def create_program_command(slug, name, currency, window_days, attribution, destination):
    """Create a program; the first one made is the default."""
    try:
        program = create_program(slug, name=name, currency=currency, window_days=window_days,
                                 attribution=attribution, destination_url=destination)
    except ServiceError as error:
        _fail(error)
    default = " (default)" if program.is_default else ""
    click.echo(f"created program {program.slug}{default}")


@rewards_cli.command("publish-policy")
@click.option("--program", "slug", required=True)
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
def publish_policy_command(slug, path):
    """Validate a policy document and publish it as the program's next version."""
    from .services.policies import InvalidPolicy, publish
    from .services.programs import get_program

    try:
        document = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        click.echo(f"error: {path} is not JSON: {error}", err=True)
        sys.exit(1)
    try:
        version = publish(get_program(slug), document)
    except InvalidPolicy as invalid:
        for line in invalid.errors:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    except ServiceError as error:
        _fail(error)
    click.echo(version.version)


@rewards_cli.command("check-ledger")
def check_ledger_command():
    """Verify the money invariants; exit 1 with a line per breach."""
    from .services.ledger_check import check_ledger

    breaches = check_ledger()
    for breach in breaches:
        click.echo(f"BREACH {breach}")
    if breaches:
        sys.exit(1)
    click.echo("ledger ok")


@rewards_cli.command("seed-demo")
def seed_demo_command():
    """A demo program with customers, clicks, signups and purchases, and demo logins."""
    from .demo import seed_demo

    made, logins = seed_demo()
    click.echo("Seeded the demo program." if made else "The demo program is already there.")
    click.echo("Demo logins (password for all: shown on each line):")
    for email, role, password in logins:
        click.echo(f"  {role:<12} {email:<28} {password}")


@rewards_cli.command("sweep")
def sweep_command():
    """Re-enqueue work that waited too long; safe to run any time."""
    from .jobs import sweep

    result = sweep()
    click.echo(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in result.items()))
