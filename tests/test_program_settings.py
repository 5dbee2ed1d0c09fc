"""Payout settings of a program (admin page, service, command line) and the audit log of
staff changes: programs, policies, API keys."""

import html
import json
import re

import pytest
from sqlalchemy import select

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account, ApiKey, AuditEntry, Program
from rewards.people.apikeys import create_api_key
from rewards.people.programs import create_program, update_program
from rewards.policies.versions import publish
from rewards.web.admin.forms import to_major, to_minor

from .conftest import csrf_token, login

POLICY = {"currency": "usd", "hold_days": 0, "purchases": "all",
          "referrer": {"percent_bps": 1000}}


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def run(app, *args):
    return app.test_cli_runner().invoke(args=["rewards", *args])


def entries(app, action: str | None = None) -> list[AuditEntry]:
    with app.app_context():
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            stmt = stmt.filter_by(action=action)
        rows = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return rows


def program_row(app, program_id) -> Program:
    with app.app_context():
        row = db.session.get(Program, program_id)
        db.session.expunge(row)
        return row


@pytest.fixture
def admin(app, program, make_user):
    """(client, account id) of a signed-in admin."""
    email = make_user("admin", email="ada@example.com", name="Ada Admin")
    client = app.test_client()
    assert login(client, email).status_code == 302
    with app.app_context():
        return client, db.session.scalar(select(Account.id).filter_by(email=email))


def form_of(page: str) -> dict:
    """The program form's current values, as the browser would send them back."""
    values = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page,
                                 re.S):
        values[name] = body.strip()
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page,
                                 re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"', body) or re.search(
            r'<option[^>]*value="([^"]*)"[^>]*selected', body)
        values[name] = chosen.group(1) if chosen else ""
    return values


def save(client, program_id, **changes):
    path = f"/admin/programs/{program_id}"
    values = form_of(text_of(client.get(path))) | changes
    values["csrf_token"] = csrf_token(client, path)
    return client.post(path, data=values)


# --------------------------------------------------------------------------- admin page


def test_the_program_page_shows_the_payout_settings(app, admin, program):
    with app.app_context():
        row = db.session.get(Program, program)
        row.payout_minimum, row.second_approval_above = 2550, 100000
        db.session.commit()
    page = text_of(admin[0].get(f"/admin/programs/{program}"))
    values = form_of(page)
    assert values["payout_schedule"] == "on_demand"
    assert values["payout_minimum"] == "25.50"
    assert values["second_approval_above"] == "1000.00"
    assert values["velocity_limit"] == "10"
    assert "Payouts and fraud checks" in page
    assert "In USD." in page


def test_saving_payout_settings_converts_major_units_and_audits_the_change(app, admin,
                                                                          program):
    client, admin_id = admin
    response = save(client, program, payout_schedule="weekly", payout_minimum="25.5",
                    second_approval_above="1,000", velocity_limit="25")
    assert response.status_code == 302, text_of(response)
    row = program_row(app, program)
    assert (row.payout_schedule, row.payout_minimum, row.second_approval_above,
            row.velocity_limit) == ("weekly", 2550, 100000, 25)
    assert row.name == "Shop Club" and row.window_days == 30  # the rest unchanged
    [entry] = entries(app, "update_program")
    assert (entry.account_id, entry.subject) == (admin_id, f"program:{program}")
    assert json.loads(entry.before) == {"payout_schedule": "on_demand", "payout_minimum": 0,
                                        "second_approval_above": None, "velocity_limit": 10}
    assert json.loads(entry.after) == {"payout_schedule": "weekly", "payout_minimum": 2550,
                                       "second_approval_above": 100000, "velocity_limit": 25}
    # Emptying the threshold clears it; saving again without a change writes no entry.
    assert save(client, program, second_approval_above="").status_code == 302
    assert program_row(app, program).second_approval_above is None
    assert save(client, program).status_code == 302
    assert len(entries(app, "update_program")) == 2


@pytest.mark.parametrize(("field", "value", "message"), [
    ("payout_minimum", "12.345", "USD amounts have at most 2 decimal places."),
    ("payout_minimum", "-5", "Give an amount like 25.00."),
    ("payout_minimum", "ten", "Give an amount like 25.00."),
    ("second_approval_above", "1e3", "Give an amount like 25.00."),
    ("velocity_limit", "0", "Give a number from 1 to 10,000."),
    ("velocity_limit", "10001", "Number must be between 1 and 10000."),
    ("payout_schedule", "daily", "Not a valid choice."),
])
def test_bad_payout_settings_are_refused_on_the_field(app, admin, program, field, value,
                                                      message):
    response = save(admin[0], program, **{field: value})
    assert response.status_code == 422
    page = text_of(response)
    errors = re.search(rf'id="{field}-errors">(.*?)</ul>', page, re.S)
    assert errors and message in errors.group(1), page
    row = program_row(app, program)
    assert (row.payout_schedule, row.payout_minimum, row.velocity_limit) == (
        "on_demand", 0, 10)
    assert entries(app, "update_program") == []


def test_a_zero_decimal_currency_takes_whole_amounts(app, admin, program):
    with app.app_context():
        yen = create_program("yen", name="Yen Club", currency="jpy").id
    assert form_of(text_of(admin[0].get(f"/admin/programs/{yen}")))["payout_minimum"] == "0"
    assert save(admin[0], yen, payout_minimum="1500").status_code == 302
    assert program_row(app, yen).payout_minimum == 1500
    refused = save(admin[0], yen, payout_minimum="10.5")
    assert refused.status_code == 422
    assert "JPY amounts are whole numbers." in text_of(refused)


def test_major_and_minor_units():
    assert to_minor("25", "usd") == 2500
    assert to_minor(" 0.5 ", "eur") == 50
    assert to_minor("", "usd") is None
    assert to_minor("700", "jpy") == 700
    for bad in ("1.001", "+1", "1.", ".5e1"):
        with pytest.raises(ValueError):
            to_minor(bad, "usd")
    assert to_major(2550, "usd") == "25.50" and to_major(700, "jpy") == "700"
    assert to_major(None, "usd") == ""


# --------------------------------------------------------------------------- service


@pytest.mark.parametrize(("values", "field"), [
    ({"payout_schedule": "daily"}, "payout_schedule"),
    ({"payout_minimum": -1}, "payout_minimum"),
    ({"payout_minimum": "500"}, "payout_minimum"),
    ({"payout_minimum": 10.5}, "payout_minimum"),
    ({"payout_minimum": True}, "payout_minimum"),
    ({"second_approval_above": -100}, "second_approval_above"),
    ({"second_approval_above": "1000"}, "second_approval_above"),
    ({"velocity_limit": 0}, "velocity_limit"),
    ({"velocity_limit": 10_001}, "velocity_limit"),
])
def test_the_service_validates_payout_settings(app, program, values, field):
    with app.app_context():
        with pytest.raises(ServiceError) as refused:
            update_program(db.session.get(Program, program), **values)
        assert refused.value.field == field
        db.session.rollback()
        with pytest.raises(ServiceError) as refused:
            create_program("other", name="Other", currency="usd", **values)
        assert refused.value.field == field
        db.session.rollback()
        assert db.session.scalar(select(Program.id).filter_by(slug="other")) is None
    assert entries(app) == []


def test_update_program_without_an_account_is_audited_as_the_system(app, program):
    with app.app_context():
        update_program(db.session.get(Program, program), name="Shop Club Plus",
                       payout_minimum=0, destination_url="https://shop.example/join")
    [entry] = entries(app, "update_program")
    assert entry.account_id is None
    assert json.loads(entry.before) == {"name": "Shop Club", "destination_url": None,
                                        "allowed_domain": None}
    assert json.loads(entry.after) == {"name": "Shop Club Plus",
                                       "destination_url": "https://shop.example/join",
                                       "allowed_domain": "shop.example"}


# --------------------------------------------------------------------------- command line


def test_create_program_takes_a_payout_schedule_and_minimum(app):
    made = run(app, "create-program", "--slug", "shop", "--name", "Shop", "--currency", "usd",
               "--payout-schedule", "monthly", "--payout-minimum", "2500")
    assert made.exit_code == 0, made.output
    plain = run(app, "create-program", "--slug", "b2b", "--name", "B2B", "--currency", "usd")
    assert plain.exit_code == 0, plain.output
    with app.app_context():
        rows = {row.slug: (row.payout_schedule, row.payout_minimum)
                for row in db.session.scalars(select(Program))}
    assert rows == {"shop": ("monthly", 2500), "b2b": ("on_demand", 0)}


@pytest.mark.parametrize("args", [
    ("--payout-schedule", "daily"),
    ("--payout-minimum", "-1"),
    ("--payout-minimum", "25.00"),
])
def test_create_program_refuses_bad_payout_options(app, args):
    result = run(app, "create-program", "--slug", "shop", "--name", "Shop", "--currency",
                 "usd", *args)
    assert result.exit_code == 2, result.output
    with app.app_context():
        assert db.session.scalar(select(Program.id)) is None


# --------------------------------------------------------------------------- audit log


def test_publishing_a_policy_is_audited(app, admin, program, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    result = run(app, "publish-policy", "--program", "shop", "--file", str(path))
    assert result.exit_code == 0, result.output
    with app.app_context():
        publish(db.session.get(Program, program), {**POLICY, "hold_days": 7},
                db.session.get(Account, admin[1]))
    first, second = entries(app, "publish_policy")
    assert (first.account_id, first.subject) == (None, f"program:{program}")
    assert (first.before, json.loads(first.after)) == (None, {"version": 1})
    assert second.account_id == admin[1]
    assert (json.loads(second.before), json.loads(second.after)) == (
        {"version": 1}, {"version": 2})


def test_an_invalid_policy_publishes_and_audits_nothing(app, program):
    with app.app_context(), pytest.raises(ServiceError):
        publish(db.session.get(Program, program), {**POLICY, "bonus": 1})
    assert entries(app) == []


def test_publishing_from_the_admin_editor_names_the_admin(app, admin, program):
    client, admin_id = admin
    path = f"/admin/programs/{program}/policy"
    response = client.post(path, data={"action": "publish", "document": json.dumps(POLICY),
                                       "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302
    [entry] = entries(app, "publish_policy")
    assert entry.account_id == admin_id and json.loads(entry.after) == {"version": 1}


def test_creating_an_api_key_is_audited_without_the_key(app, admin, program):
    result = run(app, "create-api-key", "--name", "shop backend")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    with app.app_context():
        row, second_key = create_api_key("reporting", db.session.get(Account, admin[1]))
        second_id = row.id
    first, second = entries(app, "create_api_key")
    with app.app_context():
        first_row = db.session.scalar(select(ApiKey).filter_by(name="shop backend"))
        assert (first.account_id, first.subject) == (None, f"api_key:{first_row.id}")
        assert json.loads(first.after) == {"name": "shop backend", "prefix": first_row.prefix}
    assert (second.account_id, second.subject) == (admin[1], f"api_key:{second_id}")
    assert json.loads(second.after)["name"] == "reporting"
    for entry, secret in ((first, key), (second, second_key)):
        stored = " ".join(filter(None, (entry.before, entry.after, entry.note)))
        assert secret not in stored and secret[10:] not in stored
