"""Through the real pages in Chromium: a coordinator reviews a flagged payout, clears the
signal, approves a batch and records a manual payment."""

import pytest
from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Customer, FraudSignal, Payout, Reward

from .browser import chromium, live_server, screenshot, sign_in, site_app
from .conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    """Maria referred Fiona (clean) and Ivy (a disposable email: flagged, her reward held);
    Ben referred Hana. Every reward is available; no payout is proposed yet."""
    app, port = site_app(tmp_path)
    with app.app_context():
        from rewards.people.accounts import create_account
        from rewards.people.apikeys import create_api_key
        from rewards.people.programs import create_program
        from rewards.policies.versions import publish

        program = create_program("shop", name="Harbor Coffee", currency="usd")
        publish(program, {"currency": "usd", "hold_days": 0, "referrer": {"fixed": 1000}})
        create_account("cora@example.com", PASSWORD, "coordinator", "Cora Coordinator")
        key = create_api_key("browser test")[1]
    api = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}

    def post(path, body):
        response = api.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    for referrer, name, friends in (
            ("maria", "Maria Lopez", [("fiona", "fiona@example.com"),
                                      ("ivy", "ivy@mailinator.com")]),
            ("ben", "Ben Okafor", [("hana", "hana@example.com")])):
        code = post("/customers", {"external_id": referrer, "name": name,
                                   "email": f"{referrer}@example.com"})["referral_code"]
        for friend, email in friends:
            post("/signups", {"external_id": friend, "email": email, "referral_code": code})
            post("/conversions", {"order_id": f"order-{friend}", "external_id": friend,
                                  "amount": 4200, "currency": "usd"})
    with app.app_context():
        held = db.session.scalars(select(Reward.status).where(
            Reward.status == "on_hold")).all()
        assert held == ["on_hold"], "Ivy's disposable email should hold her reward"
    with live_server(app, port) as url:
        yield app, url


def payout_status(app, external_id: str) -> tuple[int, str, str | None]:
    with app.app_context():
        row = db.session.scalar(select(Payout).join(Customer).where(
            Customer.external_id == external_id))
        return row.id, row.status, row.reference


def test_coordinator_clears_a_flag_and_approves_a_batch(site):
    app, url = site
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(page, url, "cora@example.com", PASSWORD)
        page.wait_for_url(f"{url}/coordinator")

        page.click("[data-testid=open-queue]")
        page.wait_for_url(f"{url}/coordinator/payouts")
        page.click("[data-testid=propose-shop]")
        page.wait_for_load_state()
        assert "Proposed 2 payouts for Harbor Coffee" in page.inner_text(".flashes")
        maria, _, _ = payout_status(app, "maria")
        ben, _, _ = payout_status(app, "ben")

        # The flagged payout shows its reason in words, and the money held out of it.
        row = page.locator(f"tr[data-payout-id='{maria}']")
        assert row.locator("[data-testid=flagged]").inner_text().strip() == "Flagged · 1"
        assert "disposable email service" in row.locator("[data-testid=flag-reasons]").inner_text()
        assert "1 reward held for review ($10.00)" in row.locator("[data-testid=held]").inner_text()
        assert page.locator(f"tr[data-payout-id='{ben}'] [data-testid=flagged]").count() == 0
        screenshot(page, "coordinator-queue-flagged")

        # The evidence, then clear the signal: the held reward is released.
        row.locator(f"a[href='/coordinator/payouts/{maria}']").click()
        page.wait_for_url(f"{url}/coordinator/payouts/{maria}")
        signal = page.locator("[data-testid=signal]")
        assert "Disposable email" in signal.inner_text()
        assert "mailinator.com, a disposable email service" in signal.inner_text()
        assert "i***@mailinator.com" in page.content()
        assert "ivy@mailinator.com" not in page.content()
        screenshot(page, "coordinator-payout-evidence")
        page.click("[data-testid=clear-signal]")
        page.wait_for_load_state()
        assert "Cleared signal" in page.inner_text(".flashes")
        assert page.locator("[data-testid=held-rewards]").count() == 0
        with app.app_context():
            assert db.session.scalar(select(FraudSignal.status)) == "cleared"
            assert sorted(db.session.scalars(select(Reward.status))) == [
                "available", "in_payout", "in_payout"]

        # Back to the queue: select every payout and approve them in one go.
        page.goto(f"{url}/coordinator/payouts")
        assert page.locator("[data-testid=flagged]").count() == 0
        page.check("input[data-select-all]")
        assert page.locator("input[name=payout_id]:checked").count() == 2
        page.click("[data-testid=approve-selected]")
        page.wait_for_load_state()
        flashes = page.inner_text(".flashes")
        assert f"Approved #{maria}" in flashes and f"Approved #{ben}" in flashes
        statuses = page.locator("[data-testid=payout-status]").all_inner_texts()
        assert statuses == ["Approved", "Approved"]
        screenshot(page, "coordinator-queue-approved")

        # Ben is paid by hand: the coordinator records the bank reference.
        page.goto(f"{url}/coordinator/payouts/{ben}")
        page.fill("input[name=reference]", "SEPA-2026-001")
        page.click("[data-testid=mark-paid]")
        page.wait_for_load_state()
        assert f"Marked #{ben} paid with the reference SEPA-2026-001." in page.inner_text(
            ".flashes")
        assert page.locator("h1 [data-testid=payout-status]").inner_text() == "Paid"
        screenshot(page, "coordinator-payout-paid")

        # Every step is in the audit log, with who did it.
        page.click("nav a:has-text('Audit log')")
        page.wait_for_url(f"{url}/coordinator/audit")
        actions = page.locator("[data-testid=audit-action]").all_inner_texts()
        assert actions[:4] == ["mark paid", "approve payout", "approve payout", "clear signal"]
        assert set(page.locator("[data-testid=audit-who]").all_inner_texts()[:4]) == {
            "cora@example.com"}
        screenshot(page, "coordinator-audit")

    assert payout_status(app, "maria")[1] == "approved"
    assert payout_status(app, "ben")[1:] == ("paid", "SEPA-2026-001")
