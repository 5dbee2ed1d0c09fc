"""Through the real pages in Chromium: a customer shares, a friend signs up."""

import pytest
from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Referral

from .browser import chromium, live_server, screenshot, sign_in, site_app
from .conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    app, port = site_app(tmp_path)
    with app.app_context():
        from rewards.people.accounts import create_account
        from rewards.people.programs import create_program

        create_program("shop", name="Harbor Coffee", currency="usd",
                       landing_offer="Get $10 off your first bag.")
        create_account("maria@example.com", PASSWORD, "customer", "Maria Lopez")
    with live_server(app, port) as url:
        yield app, url


def test_customer_shares_and_a_friend_signs_up(site):
    app, url = site
    with chromium() as browser:
        customer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(customer, url, "maria@example.com", PASSWORD)
        customer.wait_for_url(f"{url}/portal")
        link = customer.input_value("#referral-link")
        code = customer.inner_text("[data-testid=referral-code]").strip()
        assert link == f"{url}/r/{code}"
        assert customer.inner_text("[data-testid=count-signups]").strip() == "0"
        customer.click("#copy-link")
        customer.wait_for_function(
            "document.getElementById('copy-link').textContent.trim() === 'Copied'")
        screenshot(customer, "portal-before")

        friend = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        friend.goto(link)
        friend.wait_for_url(f"{url}/join/{code}")
        assert friend.inner_text("[data-testid=referrer-name]").strip() == "Maria"
        assert "Get $10 off your first bag." in friend.inner_text("[data-testid=landing-offer]")
        screenshot(friend, "landing-phone")
        friend.fill("input[name=name]", "Fred Friend")
        friend.fill("input[name=email]", "fred@example.com")
        friend.fill("input[name=password]", "harbor-maple-river")
        friend.click("button[type=submit]")
        friend.wait_for_url(f"{url}/login")

        customer.reload()
        assert customer.inner_text("[data-testid=count-clicks]").strip() == "1"
        assert customer.inner_text("[data-testid=count-signups]").strip() == "1"
        assert "f***@example.com" in customer.content()
        screenshot(customer, "portal-after")

    with app.app_context():
        referral = db.session.scalar(select(Referral))
        assert referral.friend.email == "fred@example.com"
        assert referral.matched_by == "visitor"
