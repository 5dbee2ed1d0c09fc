"""Rewards from purchases, holds, refunds and clawbacks, and check-ledger."""

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.ledger.check import check_ledger
from rewards.ledger.compute import reward_conversion
from rewards.models import Adjustment, Balance, Conversion, PolicyVersion, Program, Reward, utcnow
from rewards.policies.versions import publish
from rewards.sweep import sweep

POLICY = {"currency": "usd", "hold_days": 30, "purchases": "all",
          "referrer": {"percent_bps": 1000, "cap": 1000}, "friend": {"fixed": 500}}


@pytest.fixture
def policy(app, program):
    with app.app_context():
        return publish(db.session.get(Program, program), POLICY).version


@pytest.fixture
def referred(api, policy):
    """A referrer (ref-1) and a friend (f-1) who signed up with the referrer's code."""
    code = api.post("/customers", {"external_id": "ref-1", "email": "ref@example.com"}).json[
        "referral_code"]
    api.post("/signups", {"email": "f@example.com", "external_id": "f-1", "referral_code": code})
    return code


def buy(api, order_id="o-1", amount=12000, **extra):
    response = api.post("/conversions", {"order_id": order_id, "external_id": "f-1",
                                         "amount": amount, "currency": "usd"} | extra)
    assert response.status_code == 201, response.json
    return response.json


def refund(api, amount, order_id="o-1", refund_id=None):
    body = {"order_id": order_id, "amount": amount}
    if refund_id:
        body["refund_id"] = refund_id
    return api.post("/refunds", body)


def balance(api, external_id="ref-1"):
    return api.get(f"/customers/{external_id}").json["balances"].get("usd")


def assert_ledger_true(app):
    with app.app_context():
        assert check_ledger() == []


def make_due(app):
    with app.app_context():
        db.session.execute(update(Reward).values(available_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        sweep()


def pay_all(app):
    """Pay every available reward (the payout flow's ledger steps)."""
    with app.app_context():
        for number, reward in enumerate(db.session.scalars(
                select(Reward).filter_by(status="available")).all(), start=1):
            assert ledger.reserve(reward, payout_id=number)
            assert ledger.settle(reward)
        db.session.commit()


def test_a_purchase_earns_what_the_policy_says(app, api, referred):
    body = buy(api)
    referrer, friend = body["rewards"]
    assert referrer == referrer | {
        "beneficiary": "ref-1", "role": "referrer", "amount": 1000, "currency": "usd",
        "status": "pending", "rule": "referrer", "policy_version": 1,
        "explanation": "10% of $120.00 = $12.00, capped at $10.00."}
    assert (friend["beneficiary"], friend["role"], friend["amount"]) == ("f-1", "friend", 500)
    assert balance(api) == {"pending": 1000, "on_hold": 0, "available": 0, "in_payout": 0,
                            "paid": 0, "owed": 0}
    assert api.get("/conversions/o-1").json["rewards"] == body["rewards"]
    assert_ledger_true(app)


def test_no_policy_no_rewards_and_unattributed_purchases_earn_nothing(app, api, program):
    code = api.post("/customers", {"external_id": "r", "email": "r@example.com"}).json[
        "referral_code"]
    assert buy(api, referral_code=code, external_id="x")["rewards"] == []
    with app.app_context():
        publish(db.session.get(Program, program), POLICY)
    assert buy(api, "o-2", external_id="stranger")["rewards"] == []


def test_the_hold_ends_and_sweep_releases(app, api, referred):
    buy(api)
    with app.app_context():
        assert sweep()["rewards_released"] == 0
    make_due(app)
    assert balance(api)["available"] == 1000 and balance(api)["pending"] == 0
    assert_ledger_true(app)


def test_partial_refund_before_the_hold_ends_reverses_pro_rata(app, api, referred):
    buy(api, amount=10000)  # referrer 10% = $10.00, friend $5.00
    response = refund(api, 2500, refund_id="re-1")
    assert response.status_code == 200
    lines = {r["role"]: r for r in response.json["rewards"]}
    assert lines["referrer"]["reversed_amount"] == 250 and lines["referrer"]["status"] == "pending"
    assert lines["friend"]["reversed_amount"] == 125
    assert balance(api)["pending"] == 750
    # the cumulative share is what counts: a second partial refund takes it to 60%
    refund(api, 3500, refund_id="re-2")
    assert balance(api)["pending"] == 400
    assert_ledger_true(app)


def test_full_refund_after_release_reverses(app, api, referred):
    buy(api)
    make_due(app)
    response = refund(api, 12000)
    assert {r["status"] for r in response.json["rewards"]} == {"reversed"}
    assert balance(api) | {} == {"pending": 0, "on_hold": 0, "available": 0, "in_payout": 0,
                                 "paid": 0, "owed": 0}
    assert_ledger_true(app)


def test_refund_after_payment_claws_back_and_the_reward_stays_paid(app, api, referred):
    buy(api)
    make_due(app)
    pay_all(app)
    response = refund(api, 6000)  # half
    referrer = next(r for r in response.json["rewards"] if r["role"] == "referrer")
    assert referrer["status"] == "paid" and referrer["reversed_amount"] == 0
    assert balance(api) == {"pending": 0, "on_hold": 0, "available": 0, "in_payout": 0,
                            "paid": 1000, "owed": 500}
    with app.app_context():
        clawback = db.session.scalar(select(Adjustment).filter_by(kind="clawback",
                                                                  amount=-500))
        assert clawback.status == "owed"
        assert "refunded" in clawback.explanation
    assert_ledger_true(app)


def test_refund_replays_and_refusals(app, api, referred):
    buy(api, amount=10000)
    first = refund(api, 1000, refund_id="re-1")
    again = refund(api, 1000, refund_id="re-1")
    assert again.status_code == 200 and again.json == first.json
    assert refund(api, 2000, refund_id="re-1").status_code == 409
    too_much = refund(api, 9001)
    assert too_much.status_code == 400
    assert too_much.json["error"]["code"] == "refund_too_large"
    assert refund(api, 5, order_id="missing").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Conversion.refunded_amount)) == 1000
    assert_ledger_true(app)


def test_a_refund_before_the_rewards_are_computed_still_applies(app, api, referred):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rewards.background.enqueue", lambda *a: None)  # the job has not run yet
        conversion_id = buy(api, amount=10000)["conversion_id"]
    refund(api, 5000)
    with app.app_context():
        assert reward_conversion(conversion_id) is True
    assert balance(api)["pending"] == 500
    assert_ledger_true(app)


def test_check_ledger_names_each_breach(app, api, referred):
    buy(api)
    with app.app_context():
        db.session.execute(update(Balance).where(Balance.pending > 0).values(pending=1))
        db.session.execute(update(Reward).where(Reward.role == "friend").values(
            reversed_amount=100))
        db.session.commit()
        breaches = check_ledger()
    assert any("balance pending is 1 but the lines sum to 1000" in b for b in breaches)
    assert any("reversed 100 but its reversal lines sum to 0" in b for b in breaches)
    result = app.test_cli_runner().invoke(args=["rewards", "check-ledger"])
    assert result.exit_code == 1
    assert result.output.count("BREACH") == len(breaches)


def test_check_ledger_catches_a_paid_line_changed(app, api, referred):
    buy(api)
    make_due(app)
    pay_all(app)
    with app.app_context():
        db.session.execute(update(Reward).where(Reward.role == "referrer").values(amount=2000))
        db.session.commit()
        assert any("changed after payment" in b for b in check_ledger())


def test_racing_reward_jobs_make_one_set_of_rewards(app, api, referred):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rewards.background.enqueue", lambda *a: None)
        conversion_id = buy(api)["conversion_id"]
    barrier = threading.Barrier(8)
    outcomes = []

    def job():
        with app.app_context():
            barrier.wait()
            outcomes.append(reward_conversion(conversion_id))

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [False] * 7 + [True]
    with app.app_context():
        assert len(db.session.scalars(select(Reward)).all()) == 2
    assert balance(api)["pending"] == 1000
    assert_ledger_true(app)


def test_publish_policy_cli(app, program, tmp_path):
    good = tmp_path / "policy.json"
    good.write_text(json.dumps(POLICY))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"currency": "eur", "referrer": {"percent_bps": 0}}))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["rewards", "publish-policy", "--program", "shop", "--file", good])
    assert first.exit_code == 0 and first.output.strip() == "1"
    second = runner.invoke(args=["rewards", "publish-policy", "--program", "shop",
                                 "--file", good])
    assert second.output.strip() == "2"
    refused = runner.invoke(args=["rewards", "publish-policy", "--program", "shop",
                                  "--file", bad])
    assert refused.exit_code == 1
    assert "referrer.percent_bps: must be between 1 and 10000" in refused.output
    assert "currency: must be the program's currency, usd" in refused.output
    with app.app_context():
        assert [v.version for v in db.session.scalars(select(PolicyVersion))] == [1, 2]


def test_publish_policy_cli_warns_of_tiers_that_can_never_start(app, program, tmp_path):
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps({"currency": "usd", "friend": {"fixed": 500},
                                "tiers": [{"from": 3, "referrer": {"fixed": 700}}]}))
    result = app.test_cli_runner().invoke(
        args=["rewards", "publish-policy", "--program", "shop", "--file", path])
    assert result.exit_code == 0
    assert result.stdout.strip() == "1"
    assert result.stderr.startswith("warning: tiers: never reached: a friend counts once the "
                                    "referrer has been rewarded for them")


def test_the_portal_lists_rewards_and_balances(app, api, referred, make_user):
    from .conftest import login

    buy(api)
    with app.app_context():
        from rewards.models import Account, Customer
        from rewards.people.accounts import create_account

        create_account("ref@example.com", "correct-horse-battery", "customer", "Rita")
        account = db.session.scalar(select(Account).filter_by(email="ref@example.com"))
        ref = db.session.scalar(select(Customer).filter_by(external_id="ref-1"))
        assert account.customer_id == ref.id
        hold_ends = db.session.scalar(select(Reward.available_at).filter_by(role="referrer"))
    client = app.test_client()
    login(client, "ref@example.com")
    page = client.get("/portal").get_data(as_text=True)
    assert "10% of $120.00 = $12.00, capped at $10.00." in page
    assert f"available {hold_ends:%b %d, %Y}" in page
    assert 'data-testid="balance-pending">$10.00<' in page
    assert 'data-testid="balance-owed">$0.00<' in page
