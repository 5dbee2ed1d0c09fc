"""How customers choose to be paid (Connect, store credit, manual) and see their payouts."""

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account, Customer, Payout, utcnow
from rewards.payouts import methods as payout_methods
from rewards.stripe import accounts as stripe_accounts

from .conftest import csrf_token, login

PAGE = "/portal/payouts"


@pytest.fixture
def member(app, make_user):
    """(signed-in client, customer id) of a customer."""

    def make(email: str):
        make_user("customer", email=email, name="Maria Lopez")
        client = app.test_client()
        assert login(client, email).status_code == 302
        with app.app_context():
            account = db.session.scalar(select(Account).filter_by(email=email))
            return client, account.customer_id

    return make


@pytest.fixture
def maria(member):
    return member("maria@example.com")


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def customer_row(app, customer_id) -> Customer:
    with app.app_context():
        row = db.session.get(Customer, customer_id)
        db.session.expunge(row)
        return row


def update_customer(app, customer_id, **values) -> None:
    with app.app_context():
        row = db.session.get(Customer, customer_id)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


def choose(client, method):
    return client.post(f"{PAGE}/method", data={"method": method,
                                               "csrf_token": csrf_token(client, PAGE)})


def onboard(client):
    return client.post(f"{PAGE}/connect", data={"csrf_token": csrf_token(client, PAGE)})


def option_block(page: str, method: str) -> str:
    match = re.search(rf'<li class="payout-method[^"]*" data-method="{method}">(.*?)</li>',
                      page, re.S)
    assert match, f"no {method} option on the page"
    return match.group(1)


def test_the_page_offers_three_methods_and_the_home_page_links_to_it(app, maria,
                                                                      stripe_fake):
    client, _ = maria
    page = text_of(client.get(PAGE))
    assert "How you get paid" in page
    for method in ("connect", "store_credit", "manual"):
        option_block(page, method)
    assert "Not chosen yet" in page
    assert "Set up with Stripe" in option_block(page, "connect")
    home = text_of(client.get("/portal"))
    assert 'href="/portal/payouts"' in home
    assert "You have not chosen how to be paid yet" in home


def test_choosing_manual_payment(app, maria):
    client, customer_id = maria
    response = choose(client, "manual")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    assert customer_row(app, customer_id).payout_method == "manual"
    page = text_of(client.get(PAGE))
    assert "From now on the business pays you directly." in page
    assert 'class="badge badge-success">Paid by the business' in page
    assert "Paid by the business" in text_of(client.get("/portal"))


def test_an_unknown_method_is_refused(app, maria):
    client, customer_id = maria
    assert choose(client, "bitcoin").status_code == 400
    assert customer_row(app, customer_id).payout_method is None
    with app.app_context(), pytest.raises(ServiceError) as refused:
        payout_methods.choose_method(db.session.get(Customer, customer_id), "cash")
    assert refused.value.field == "method"


def test_store_credit_needs_the_business_to_link_a_stripe_customer(app, maria, api,
                                                                    stripe_fake):
    client, customer_id = maria
    page = text_of(client.get(PAGE))
    assert "Ask the business to link it." in option_block(page, "store_credit")
    assert "Use store credit" not in page
    refused = choose(client, "store_credit")
    assert refused.status_code == 302
    assert customer_row(app, customer_id).payout_method is None
    assert "Ask the business to link it." in text_of(client.get(PAGE))
    # The business links its Stripe customer through the API (found by email).
    linked = api.post("/customers", {"external_id": "shop-7", "email": "maria@example.com",
                                     "stripe_customer_id": "cus_Maria7"})
    assert linked.status_code == 200
    assert customer_row(app, customer_id).stripe_customer_id == "cus_Maria7"
    assert "Use store credit" in option_block(text_of(client.get(PAGE)), "store_credit")
    assert choose(client, "store_credit").status_code == 302
    assert customer_row(app, customer_id).payout_method == "store_credit"
    assert stripe_fake.requests == []  # choosing calls nobody


def test_connect_onboarding_creates_the_account_once_and_redirects_to_stripe(
        app, maria, stripe_fake):
    client, customer_id = maria
    response = onboard(client)
    assert response.status_code == 303
    row = customer_row(app, customer_id)
    assert row.stripe_account_id and row.stripe_account_id.startswith("acct_")
    assert (row.payout_method, row.stripe_account_ready) == ("connect", False)
    assert response.headers["Location"] == \
        f"https://connect.stripe.test/setup/{row.stripe_account_id}"
    assert [(r.method, r.path) for r in stripe_fake.requests] == [
        ("POST", "/v1/accounts"), ("POST", "/v1/account_links")]
    [created] = stripe_fake.calls("POST /v1/accounts")
    assert created.idempotency_key == f"connect-account-{customer_id}"
    assert created.params["type"] == "express"
    assert created.params["email"] == "maria@example.com"
    assert created.params["capabilities"] == {"transfers": {"requested": "true"}}
    [link] = stripe_fake.calls("POST /v1/account_links")
    assert link.params == {
        "account": row.stripe_account_id, "type": "account_onboarding",
        "refresh_url": "http://rewards.test/portal/payouts?stripe=refresh",
        "return_url": "http://rewards.test/portal/payouts?stripe=return"}

    page = text_of(client.get(f"{PAGE}?stripe=return"))
    assert "Stripe is checking your details" in page
    connect = option_block(page, "connect")
    assert "not ready yet" in connect and "Continue Stripe setup" in connect
    assert "Chosen" in connect
    assert "The Stripe setup link expired" in text_of(client.get(f"{PAGE}?stripe=refresh"))

    again = onboard(client)  # the link expired or was left: a new link, the same account
    assert again.status_code == 303
    assert again.headers["Location"] == response.headers["Location"]
    assert len(stripe_fake.calls("POST /v1/accounts")) == 1
    links = stripe_fake.calls("POST /v1/account_links")
    assert len(links) == 2 and links[1].params["account"] == row.stripe_account_id
    assert customer_row(app, customer_id).stripe_account_id == row.stripe_account_id


def test_a_stripe_refusal_during_onboarding_is_said_and_nothing_is_stored(app, maria,
                                                                          stripe_fake):
    client, customer_id = maria
    stripe_fake.fail("POST /v1/accounts", "platform_account_required",
                     message="Connect is not enabled.")
    response = onboard(client)
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    page = text_of(client.get(PAGE))
    assert "Stripe could not start the setup: Connect is not enabled." in page
    row = customer_row(app, customer_id)
    assert (row.stripe_account_id, row.payout_method) == (None, None)


def test_account_updated_marks_the_account_ready_or_not(app, maria, stripe_fake):
    client, customer_id = maria
    onboard(client)
    account = customer_row(app, customer_id).stripe_account_id
    with app.app_context():
        assert stripe_accounts.account_updated({"id": "acct_someone_else",
                                               "payouts_enabled": True}) is None
        marked = stripe_accounts.account_updated({"id": account, "payouts_enabled": True})
        assert marked.id == customer_id
    assert customer_row(app, customer_id).stripe_account_ready is True
    connect = option_block(text_of(client.get(PAGE)), "connect")
    assert "ready" in connect and "not ready yet" not in connect
    assert "Continue Stripe setup" not in connect

    with app.app_context():
        stripe_accounts.account_updated({"id": account, "payouts_enabled": False,
                                        "capabilities": {"transfers": "inactive"}})
    assert customer_row(app, customer_id).stripe_account_ready is False
    assert "not ready yet" in option_block(text_of(client.get(PAGE)), "connect")

    with app.app_context():
        stripe_accounts.account_updated({"id": account, "payouts_enabled": False,
                                        "capabilities": {"transfers": "active"}})
    assert customer_row(app, customer_id).stripe_account_ready is True
    with app.app_context():
        stripe_accounts.account_updated({"id": account})  # nothing enabled
    assert customer_row(app, customer_id).stripe_account_ready is False


def test_switching_back_to_a_ready_connect_account(app, maria, stripe_fake):
    client, customer_id = maria
    assert choose(client, "connect").status_code == 302  # no account yet: refused
    assert customer_row(app, customer_id).payout_method is None
    onboard(client)
    with app.app_context():
        stripe_accounts.account_updated({"id": customer_row(app, customer_id).stripe_account_id,
                                        "payouts_enabled": True})
    choose(client, "manual")
    assert customer_row(app, customer_id).payout_method == "manual"
    assert "Use Stripe Connect" in option_block(text_of(client.get(PAGE)), "connect")
    assert choose(client, "connect").status_code == 302
    assert customer_row(app, customer_id).payout_method == "connect"
    assert len(stripe_fake.calls("POST /v1/accounts")) == 1


def test_starting_onboarding_keeps_a_method_already_chosen(app, maria, stripe_fake):
    client, customer_id = maria
    choose(client, "manual")
    assert onboard(client).status_code == 303
    row = customer_row(app, customer_id)
    assert row.stripe_account_id and row.payout_method == "manual"
    page = text_of(client.get(f"{PAGE}?stripe=return"))
    assert "choose Stripe Connect to be paid through it" in page
    assert "Chosen" not in option_block(page, "connect")


def test_without_stripe_connect_and_store_credit_are_unavailable(app, maria):
    client, customer_id = maria
    update_customer(app, customer_id, stripe_customer_id="cus_123")
    page = text_of(client.get(PAGE))
    for method in ("connect", "store_credit"):
        block = option_block(page, method)
        assert "Unavailable" in block
        assert "Stripe is not set up on this platform yet" in block
        assert "<form" not in block
    assert "Unavailable" not in option_block(page, "manual")
    assert onboard(client).headers["Location"] == PAGE
    assert choose(client, "store_credit").headers["Location"] == PAGE
    assert "Stripe is not set up on this platform yet" in text_of(client.get(PAGE))
    row = customer_row(app, customer_id)
    assert (row.payout_method, row.stripe_account_id) == (None, None)
    assert choose(client, "manual").status_code == 302
    assert customer_row(app, customer_id).payout_method == "manual"


def add_payout(app, customer_id, **values) -> int:
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        payout = Payout(program_id=customer.program_id, customer_id=customer_id,
                        currency="usd", gross=values["amount"], netted=0, **values)
        db.session.add(payout)
        db.session.commit()
        return payout.id


def test_payout_history_is_shown_to_its_owner_only(app, maria, member):
    client, customer_id = maria
    now = utcnow()
    add_payout(app, customer_id, amount=2550, method="manual", status="paid",
               reference="BANK-2024-981", created_at=now - timedelta(days=9),
               paid_at=now - timedelta(days=8))
    add_payout(app, customer_id, amount=1200, method="connect", status="needs_attention",
               failure_reason="The customer's Stripe account cannot receive transfers yet: "
                              "they must finish Stripe onboarding.")
    page = text_of(client.get(PAGE))
    rows = re.findall(r'<tr data-payout="\d+" data-status="(\w+)">(.*?)</tr>', page, re.S)
    assert [status for status, _ in rows] == ["needs_attention", "paid"]  # newest first
    attention, paid = rows[0][1], rows[1][1]
    assert "$12.00" in attention and "Stripe Connect" in attention
    assert "Needs attention" in attention
    assert "Finish the Stripe setup" in attention
    assert "The customer's" not in attention  # the staff wording is not shown
    assert "$25.50" in paid and "Paid by the business" in paid
    assert "BANK-2024-981" in paid

    other, _ = member("tom@example.com")
    theirs = text_of(other.get(PAGE))
    assert "No payouts yet" in theirs
    assert "BANK-2024-981" not in theirs and "$25.50" not in theirs


def test_plain_failure_reasons(app):
    cases = [
        ("needs_attention", "connect", "Stripe is not configured: set STRIPE_API_KEY.",
         "switched off"),
        ("needs_attention", "store_credit",
         "The customer has no Stripe customer record to credit.", "links your account"),
        ("failed", "connect", "Your destination account is closed (req_123).",
         "could not be sent"),
        ("needs_attention", "connect", "account_invalid: No such destination",
         "Check your details"),
    ]
    for status, method, reason, words in cases:
        row = Payout(status=status, method=method, failure_reason=reason)
        assert words in payout_methods.plain_failure(row), reason
    assert payout_methods.plain_failure(Payout(status="paid", method="manual")) is None
