"""Amounts on pages in currencies of 0, 2 and 3 decimals: the payout queue's amount
filters at their exact boundaries, and KWD amounts as the coordinator and the admin see
and type them."""

import csv
import html
import io
import re

import pytest

from rewards.extensions import db
from rewards.models import Customer, Payout
from rewards.people.programs import create_program

from .conftest import csrf_token, login
from .test_program_settings import form_of, program_row, save

KWD_POLICY = """{"currency": "kwd", "hold_days": 0, "referrer": {"percent_bps": 1000}}"""


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def signed_in(app, make_user):
    """signed_in(role) -> a test client signed in with a new account of that role."""

    def client_for(role: str):
        client = app.test_client()
        assert login(client, make_user(role)).status_code == 302
        return client

    return client_for


@pytest.fixture
def payouts(app, program):
    """(currency, amount) -> payout id: 10.000 and 10.001 KWD, ¥10 and ¥11, $10.00 and
    $10.01, each a manual payout awaiting approval, for a customer of its own."""
    made = {}
    with app.app_context():
        for currency, amounts in (("kwd", (10000, 10001)), ("jpy", (10, 11)),
                                  ("usd", (1000, 1001))):
            club = create_program(f"club-{currency}", name=f"{currency.upper()} Club",
                                  currency=currency)
            for amount in amounts:
                customer = Customer(program_id=club.id, external_id=f"{currency}-{amount}",
                                    email=f"{currency}-{amount}@example.com")
                db.session.add(customer)
                db.session.flush()
                payout = Payout(program_id=club.id, customer_id=customer.id,
                                currency=currency, gross=amount, netted=0, amount=amount,
                                method="manual", status="awaiting_approval")
                db.session.add(payout)
                db.session.flush()
                made[(currency, amount)] = payout.id
        db.session.commit()
    return made


def test_amount_filters_are_exact_at_the_boundaries_in_every_exponent(payouts, signed_in):
    coordinator = signed_in("coordinator")

    def shown(query: str) -> list[tuple[str, int]]:
        page = text_of(coordinator.get(f"/coordinator/payouts?{query}"))
        assert "amount must be a number" not in page
        ids = {int(n) for n in re.findall(r'data-payout-id="(\d+)"', page)}
        return sorted(key for key, payout_id in payouts.items() if payout_id in ids)

    everything = sorted(payouts)
    assert shown("min=10") == everything
    assert shown("min=10&max=10") == [("jpy", 10), ("kwd", 10000), ("usd", 1000)]
    assert shown("min=10.001") == [("jpy", 11), ("kwd", 10001), ("usd", 1001)]
    assert shown("max=10.001") == [("jpy", 10), ("kwd", 10000), ("kwd", 10001),
                                   ("usd", 1000)]
    assert shown("min=10.001&max=10.001") == [("kwd", 10001)]
    assert shown("min=10.0005&max=10.0015") == [("kwd", 10001)]
    assert shown("min=10.01&max=10.01") == [("usd", 1001)]
    assert shown("min=11&max=11") == [("jpy", 11)]
    assert shown("max=9.999") == []
    assert shown("min=10.002") == [("jpy", 11), ("usd", 1001)]
    # Past anything a payout can hold, in every exponent: all of them, or none.
    assert shown("max=999,999,999,999,999") == everything
    assert shown("min=999999999999999") == []


def test_kwd_amounts_show_with_three_decimals(payouts, signed_in):
    coordinator = signed_in("coordinator")
    queue = text_of(coordinator.get("/coordinator/payouts"))
    assert "10.000 KWD" in queue and "10.001 KWD" in queue
    assert "¥11" in queue and "$10.01" in queue
    detail = text_of(coordinator.get(f"/coordinator/payouts/{payouts[('kwd', 10001)]}"))
    assert "10.001 KWD" in detail
    response = coordinator.get("/coordinator/payouts.csv?min=10.001")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["amount"], r["currency"]) for r in rows] == [
        ("10.001", "KWD"), ("11", "JPY"), ("10.01", "USD")]


def test_an_admin_types_and_reads_kwd_in_fils(app, program, signed_in):
    with app.app_context():
        club = create_program("club-kwd", name="KWD Club", currency="kwd").id
    admin = signed_in("admin")
    page = text_of(admin.get(f"/admin/programs/{club}"))
    assert form_of(page)["payout_minimum"] == "0.000" and "In KWD." in page
    assert save(admin, club, payout_minimum="2.5",
                second_approval_above="1,250.125").status_code == 302
    row = program_row(app, club)
    assert (row.payout_minimum, row.second_approval_above) == (2500, 1250125)
    values = form_of(text_of(admin.get(f"/admin/programs/{club}")))
    assert (values["payout_minimum"], values["second_approval_above"]) == ("2.500",
                                                                           "1250.125")
    refused = save(admin, club, payout_minimum="2.5005")
    assert refused.status_code == 422
    assert "KWD amounts have at most 3 decimal places." in html.unescape(
        refused.get_data(as_text=True))
    assert program_row(app, club).payout_minimum == 2500

    path = f"/admin/programs/{club}/policy"
    editor = text_of(admin.get(path))
    assert 'value="12.000"' in editor and "In KWD, like 12.000." in editor
    assert "5000 is 5.000 KWD" in editor
    preview = admin.post(path, data={
        "csrf_token": csrf_token(admin, path), "action": "preview", "document": KWD_POLICY,
        "amount": "12.345", "purchase": "first", "rewarded_friends": "0"})
    sentence = "A 12.345 KWD first purchase by a referrer with no rewarded referrals earns:"
    assert sentence in text_of(preview)
    assert "1.235 KWD" in text_of(preview)  # 10% of 12.345, rounded half up to the fils
