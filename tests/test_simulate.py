"""Replaying a draft policy over recent purchases: figures, history, CLI and admin page."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import (
    Adjustment,
    Balance,
    Conversion,
    PolicyVersion,
    Program,
    Referral,
    Reward,
    utcnow,
)
from rewards.policies.months import month_start
from rewards.policies.replay import per_customer, simulate
from rewards.policies.versions import InvalidPolicy, publish

from .conftest import csrf_token

PUBLISHED = {"currency": "usd", "purchases": "first", "referrer": {"fixed": 1000},
             "friend": {"fixed": 500}}
RICHER = {"currency": "usd", "purchases": "all", "referrer": {"percent_bps": 2000},
          "tiers": [{"from": 2, "referrer": {"fixed": 1500}}],
          "milestones": [{"at": 3, "bonus": 2500}], "friend": {"fixed": 700}}


def publish_policy(app, program, document=PUBLISHED):
    with app.app_context():
        publish(db.session.get(Program, program), document)


def referrer(api, external_id, name=None):
    body = {"external_id": external_id, "email": f"{external_id}@example.com"}
    if name:
        body["name"] = name
    return api.post("/customers", body).json["referral_code"]


def signup(api, friend, code):
    response = api.post("/signups", {"email": f"{friend}@example.com", "external_id": friend,
                                     "referral_code": code})
    assert response.json["attributed"], response.json


def buy(api, order_id, friend, amount, **extra):
    response = api.post("/conversions", {"order_id": order_id, "external_id": friend,
                                         "amount": amount, "currency": "usd"} | extra)
    assert response.status_code == 201, response.json
    return response.json


def run(app, program, document, days=30, progress=None):
    with app.app_context():
        return simulate(db.session.get(Program, program), document, days, progress)


@pytest.fixture
def shop(app, api, program):
    """Ana (3 friends, one purchase each) and Ben (1 friend, two purchases), under PUBLISHED.

    Actual: Ana 3 x $10, Ben 1 x $10, 4 friends x $5: $60.00 in 8 lines, 4 customers.
    """
    publish_policy(app, program)
    ana = referrer(api, "ana", "Ana Lopez")
    ben = referrer(api, "ben", "Ben Okafor")
    for friend in ("f1", "f2", "f3"):
        signup(api, friend, ana)
    signup(api, "g1", ben)
    for order, friend in (("o1", "f1"), ("o2", "f2"), ("o3", "f3")):
        assert len(buy(api, order, friend, 5000)["rewards"]) == 2
    assert len(buy(api, "o4", "g1", 10000)["rewards"]) == 2
    assert buy(api, "o5", "g1", 4000)["rewards"] == []  # not the first purchase
    buy(api, "o6", "stranger", 9000)  # not attributed: not replayed
    return program


def usd(result):
    [totals] = result.currencies
    assert totals.currency == "usd"
    return totals


def test_the_published_document_replays_to_what_was_paid(app, shop):
    calls = []
    result = run(app, shop, PUBLISHED, progress=lambda done, total: calls.append((done, total)))
    totals = usd(result)
    assert result.purchases == 5 and totals.purchases == 5
    assert (totals.draft_cost, totals.actual_cost) == (6000, 6000)
    assert (totals.draft_rewards, totals.actual_rewards) == (8, 8)
    assert (totals.draft_customers, totals.actual_customers) == (4, 4)
    assert (totals.draft_per_customer, totals.actual_per_customer) == (1500, 1500)
    assert result.referrers == []
    assert result.published_version == 1
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)


def test_a_richer_draft_costs_what_its_rules_say(app, shop):
    result = run(app, shop, RICHER)
    totals = usd(result)
    # Ana: 20% of $50 = $10, then the tier $15, $15 and the 3rd-friend bonus $25 = $65.
    # Ben: 20% of $100 = $20, then 20% of $40 = $8 (all purchases) = $28.
    # Friends: 4 x $7 (Ben's friend once). $65 + $28 + $28 = $121.00 in 10 lines.
    assert (totals.actual_cost, totals.draft_cost, totals.cost_delta) == (6000, 12100, 6100)
    assert (totals.actual_rewards, totals.draft_rewards) == (8, 10)
    assert (totals.actual_customers, totals.draft_customers) == (4, 4)
    assert (totals.actual_per_customer, totals.draft_per_customer) == (1500, 3025)
    assert [(r.external_id, r.name, r.email, r.actual, r.draft, r.delta)
            for r in result.referrers] == [
        ("ana", "Ana Lopez", "a***@example.com", 3000, 6500, 3500),
        ("ben", "Ben Okafor", "b***@example.com", 1000, 2800, 1800),
    ]


def test_a_cheaper_draft_with_a_minimum_and_a_lifetime_limit(app, shop):
    draft = {"currency": "usd", "referrer": {"fixed": 1000}, "min_purchase": 6000}
    totals = usd(run(app, shop, draft))
    # Only Ben's $100 purchase is over the minimum: one $10 line, no friend rewards.
    assert (totals.draft_cost, totals.draft_rewards, totals.draft_customers) == (1000, 1, 1)
    assert (totals.draft_per_customer, totals.cost_delta) == (1000, -5000)
    limited = {"currency": "usd", "referrer": {"fixed": 1000},
               "limits": {"lifetime": {"count": 2}}}
    result = run(app, shop, limited)
    assert usd(result).draft_cost == 3000  # Ana's third friend is over her limit
    assert [(r.external_id, r.actual, r.draft, r.delta) for r in result.referrers] == [
        ("ana", 3000, 2000, -1000)]


def test_monthly_limits_start_again_each_calendar_month(app, api, program):
    publish_policy(app, program)
    ana = referrer(api, "ana")
    this_month = month_start(utcnow())
    for order, friend, at in (("o1", "f1", this_month - timedelta(hours=1)),
                              ("o2", "f2", this_month + timedelta(seconds=1)),
                              ("o3", "f3", utcnow())):
        buy(api, order, friend, 5000, referral_code=ana, occurred_at=at.isoformat())
    draft = {"currency": "usd", "referrer": {"fixed": 1000},
             "limits": {"month": {"count": 1}}}
    totals = usd(run(app, program, draft, days=40))
    assert (totals.actual_cost, totals.draft_cost) == (4500, 2000)


def test_history_before_the_window_counts(app, api, program):
    """A friend rewarded 40 days ago is Ana's 1st; a friend who bought then is no longer new."""
    publish_policy(app, program)
    ana = referrer(api, "ana")
    old = (utcnow() - timedelta(days=40)).isoformat()
    buy(api, "old-1", "f0", 5000, referral_code=ana, occurred_at=old)
    buy(api, "old-2", "g0", 5000, referral_code=ana, occurred_at=old)
    signup(api, "f1", ana)
    buy(api, "new-1", "f1", 5000)
    assert buy(api, "new-2", "g0", 5000)["rewards"] == []  # g0's second purchase
    draft = {"currency": "usd", "purchases": "first", "referrer": {"fixed": 1000},
             "tiers": [{"from": 3, "referrer": {"fixed": 2000}}],
             "milestones": [{"at": 3, "bonus": 300}]}
    result = run(app, program, draft)
    totals = usd(result)
    assert result.purchases == 2
    # f1 is Ana's 3rd rewarded friend: the tier's $20 and the $3 bonus; g0 earns nothing.
    assert (totals.actual_cost, totals.draft_cost) == (1500, 2300)
    assert (totals.actual_rewards, totals.draft_rewards) == (2, 2)
    assert (totals.actual_customers, totals.draft_customers) == (1, 1)
    # Over 60 days the old purchases are replayed too, from an empty history.
    wide = usd(run(app, program, draft, days=60))
    assert (wide.actual_cost, wide.draft_cost) == (4500, 1000 + 1000 + 2000 + 300)


def test_refunds_count_net_and_leave_the_history(app, api, program):
    """A fully refunded friend no longer counts toward the tiers, in the ledger and the replay."""
    tiered = {"currency": "usd", "purchases": "first", "referrer": {"fixed": 1000},
              "tiers": [{"from": 2, "referrer": {"fixed": 3000}}], "friend": {"fixed": 500}}
    publish_policy(app, program, tiered)
    ana = referrer(api, "ana")
    for friend in ("f1", "f2", "f3"):
        signup(api, friend, ana)
    buy(api, "o1", "f1", 5000)
    assert api.post("/refunds", {"order_id": "o1", "amount": 5000}).status_code == 200
    assert [r["amount"] for r in buy(api, "o2", "f2", 5000)["rewards"]] == [1000, 500]
    buy(api, "o3", "f3", 8000)
    api.post("/refunds", {"order_id": "o3", "amount": 2000})  # a quarter of $30 and $5 back
    result = run(app, program, tiered)
    totals = usd(result)
    expected = 0 + 1500 + (3000 - 750) + (500 - 125)
    assert (totals.actual_cost, totals.draft_cost) == (expected, expected)
    assert (totals.actual_rewards, totals.draft_rewards) == (6, 6)
    assert result.referrers == []


def test_nothing_is_written(app, shop):
    models = (Conversion, Reward, Referral, PolicyVersion, Balance, Adjustment)

    def counts():
        with app.app_context():
            return [db.session.scalar(select(func.count()).select_from(m)) for m in models]

    before = counts()
    run(app, shop, RICHER)
    assert counts() == before
    with app.app_context():
        assert db.session.scalar(select(func.max(PolicyVersion.version))) == 1


def test_an_invalid_draft_lists_every_error(app, shop):
    with pytest.raises(InvalidPolicy) as raised:
        run(app, shop, {"currency": "eur", "referrer": {"fixed": 0}, "bonus": 1})
    assert raised.value.errors == [
        "bonus: unknown key",
        "currency: must be the program's currency, usd",
        "referrer.fixed: must be between 1 and 1000000000",
    ]


def test_no_purchases_and_no_policy(app, program):
    result = run(app, program, PUBLISHED, days=7)
    assert (result.purchases, result.currencies, result.referrers) == (0, [], [])
    assert result.published_version is None


def test_cost_per_customer_rounds_half_up():
    assert per_customer(10, 4) == 3  # 2.5
    assert per_customer(10, 3) == 3
    assert per_customer(11, 2) == 6  # 5.5
    assert per_customer(0, 0) is None and per_customer(500, 0) is None


# --------------------------------------------------------------------------- CLI


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["rewards", "simulate", *args])


def test_cli_prints_the_comparison(app, shop, tmp_path):
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps(RICHER))
    result = cli(app, "--program", "shop", "--draft", str(draft), "--days", "30")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Replayed 5 attributed purchases of the last 30 days" in out
    assert "published version 1 now in force" in out
    rows = {line[:22].strip(): line[22:].split() for line in out.splitlines()}
    assert rows["cost"] == ["$60.00", "$121.00", "+$61.00"]
    assert rows["rewards"] == ["8", "10", "+2"]
    assert rows["acquired customers"] == ["4", "4", "0"]
    assert rows["cost per customer"] == ["$15.00", "$30.25", "+$15.25"]
    assert "a***@example.com" in out and "+$35.00" in out
    assert out.index("ana") < out.index("ben")
    with app.app_context():
        assert db.session.scalar(select(func.count(Reward.id))) == 8


def test_cli_refusals(app, shop, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"currency": "usd", "referrer": {"fixed": -5}}))
    refused = cli(app, "--program", "shop", "--draft", str(bad))
    assert refused.exit_code == 1
    assert "error: referrer.fixed: must be between 1 and 1000000000" in refused.output
    not_json = tmp_path / "x.json"
    not_json.write_text("{nope")
    assert cli(app, "--program", "shop", "--draft", str(not_json)).exit_code == 1
    unknown = cli(app, "--program", "nope", "--draft", str(bad))
    assert unknown.exit_code == 1 and "No program has the slug 'nope'" in unknown.output
    assert cli(app, "--program", "shop", "--draft", str(bad), "--days", "0").exit_code == 2


# --------------------------------------------------------------------------- admin page


def page(program):
    return f"/admin/programs/{program}/simulate"


def test_admin_page_prefills_and_shows_the_comparison(app, shop, as_role):
    client = as_role("admin")
    shown = client.get(page(shop))
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "Replay a draft policy" in text and "&#34;fixed&#34;: 1000" in text
    response = client.post(page(shop), data={
        "csrf_token": csrf_token(client, page(shop)), "document": json.dumps(RICHER),
        "days": "30"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'data-testid="draft-cost-usd">$121.00<' in text
    assert "+$61.00" in text and "$30.25" in text and "$15.00" in text
    assert "a***@example.com" in text and "+$35.00" in text
    assert "Ana Lopez" in text
    with app.app_context():
        assert db.session.scalar(select(func.count(Reward.id))) == 8


def test_admin_page_shows_located_errors(app, shop, as_role):
    client = as_role("admin")
    token = csrf_token(client, page(shop))
    bad = {"currency": "usd", "tiers": [{"from": 1, "referrer": {"fixed": 100}}]}
    response = client.post(page(shop), data={"csrf_token": token,
                                              "document": json.dumps(bad), "days": "30"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "<code>tiers[0].from</code> must be at least 2" in text
    assert "data-testid=\"simulation\"" not in text
    not_json = client.post(page(shop), data={"csrf_token": token, "document": "{",
                                             "days": "30"})
    assert not_json.status_code == 422 and "This is not JSON" in not_json.get_data(as_text=True)
    too_long = client.post(page(shop), data={"csrf_token": token,
                                             "document": json.dumps(PUBLISHED), "days": "400"})
    assert too_long.status_code == 422
    no_token = client.post(page(shop), data={"document": json.dumps(PUBLISHED), "days": "30"})
    assert no_token.status_code in (400, 422)
    assert client.get(page(shop + 1000)).status_code == 404


def test_admin_page_starts_from_a_starter_without_a_policy(app, program, as_role):
    text = as_role("admin").get(page(program)).get_data(as_text=True)
    assert "&#34;currency&#34;: &#34;usd&#34;" in text


def test_only_admins_replay(app, shop, as_role):
    for role in ("coordinator", "marketing", "customer"):
        assert as_role(role).get(page(shop)).status_code == 403
    assert app.test_client().get(page(shop)).status_code == 302
