"""The pure policy evaluation: worked examples with exact explanations, then properties."""

import ast
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewards.policies import (
    Decision,
    Evaluation,
    History,
    Policy,
    Purchase,
    cautions,
    evaluate,
    parse_policy,
    percent_of,
    pro_rata,
)
from rewards.policies.months import add_months
from rewards.policies.wording import ordinal, percent_text

EXAMPLE = {
    "currency": "usd",
    "hold_days": 30,
    "min_purchase": 2000,
    "purchases": "first",
    "referrer": {"percent_bps": 1000, "cap": 5000},
    "tiers": [{"from": 3, "referrer": {"percent_bps": 1500, "cap": 8000}}],
    "milestones": [{"at": 5, "bonus": 5000}],
    "friend": {"fixed": 500},
    "limits": {"month": {"count": 10, "amount": 50000}, "lifetime": {"count": 100}},
}
EXAMPLE_POLICY = parse_policy(EXAMPLE, currency="usd")
T0 = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
NEW_FRIEND = 1000


def policy(**document) -> Policy:
    return parse_policy({"currency": "usd", **document})


def buy(amount=12000, *, currency="usd", at=T0, friend=NEW_FRIEND, signed_up=None, prior=0,
        rewarded_before=False) -> Purchase:
    return Purchase(amount=amount, currency=currency, occurred_at=at, friend_id=friend,
                    friend_signed_up_at=signed_up or at - timedelta(days=3),
                    friend_prior_purchases=prior, friend_rewarded_before=rewarded_before)


def history(friends=0, **counters) -> History:
    """A referrer with `friends` rewarded friends (ids 1..friends) before this purchase."""
    return History(rewarded_friends=tuple(range(1, friends + 1)), **counters)


def lines(evaluation: Evaluation) -> list[tuple]:
    return [(d.role, d.rule, d.amount, d.explanation) for d in evaluation.decisions]


FRIEND_LINE = ("friend", "friend", 500, "A fixed $5.00 for the referral.")


# --------------------------------------------------------------------------- worked examples


def test_first_friend_of_the_api_example():
    result = evaluate(EXAMPLE_POLICY, buy(12000), history())
    assert lines(result) == [
        ("referrer", "referrer", 1200, "10% of $120.00 = $12.00."),
        FRIEND_LINE,
    ]
    assert result.notes == ()
    assert result.available_at == T0 + timedelta(days=30)


def test_percentage_capped():
    result = evaluate(EXAMPLE_POLICY, buy(60000), history())
    assert lines(result)[0] == (
        "referrer", "referrer", 5000, "10% of $600.00 = $60.00, capped at $50.00."
    )


def test_exactly_at_the_cap_is_not_capped():
    result = evaluate(EXAMPLE_POLICY, buy(50000), history())
    assert lines(result)[0] == ("referrer", "referrer", 5000, "10% of $500.00 = $50.00.")


def test_a_cent_over_the_cap_is_capped():
    result = evaluate(EXAMPLE_POLICY, buy(50005), history())  # 5000.5 rounds up to 5001
    assert lines(result)[0] == (
        "referrer", "referrer", 5000, "10% of $500.05 = $50.01, capped at $50.00."
    )


def test_tier_from_the_third_friend():
    assert lines(evaluate(EXAMPLE_POLICY, buy(12000), history(2)))[0] == (
        "referrer", "tiers[0].referrer", 1800, "Tier from the 3rd friend: 15% of $120.00 = $18.00."
    )
    assert lines(evaluate(EXAMPLE_POLICY, buy(60000), history(2)))[0] == (
        "referrer", "tiers[0].referrer", 8000,
        "Tier from the 3rd friend: 15% of $600.00 = $90.00, capped at $80.00.",
    )


def test_tier_boundary_from_minus_one_and_from():
    second = evaluate(EXAMPLE_POLICY, buy(12000), history(1))  # ordinal 2 = from - 1
    third = evaluate(EXAMPLE_POLICY, buy(12000), history(2))  # ordinal 3 = from
    assert (second.decisions[0].rule, second.decisions[0].amount) == ("referrer", 1200)
    assert (third.decisions[0].rule, third.decisions[0].amount) == ("tiers[0].referrer", 1800)


def test_several_tiers_pick_the_greatest_from_not_above_the_ordinal():
    rules = policy(
        referrer={"fixed": 100},
        tiers=[{"from": 3, "referrer": {"fixed": 300}}, {"from": 10, "referrer": {"fixed": 1000}},
               {"from": 11, "referrer": {"fixed": 1100}}],
    )
    expected = {1: "referrer", 2: "referrer", 3: "tiers[0].referrer", 9: "tiers[0].referrer",
                10: "tiers[1].referrer", 11: "tiers[2].referrer", 500: "tiers[2].referrer"}
    for place, rule in expected.items():
        (decision,) = evaluate(rules, buy(), history(place - 1)).decisions
        assert decision.rule == rule, place


def test_fixed_tier_explanation():
    rules = policy(referrer={"fixed": 500}, tiers=[{"from": 2, "referrer": {"fixed": 800}}])
    assert lines(evaluate(rules, buy(), history(1))) == [
        ("referrer", "tiers[0].referrer", 800,
         "Tier from the 2nd friend: a fixed $8.00 for the referral."),
    ]
    assert lines(evaluate(rules, buy(), history())) == [
        ("referrer", "referrer", 500, "A fixed $5.00 for the referral."),
    ]


def test_tiers_only_pay_from_their_start():
    rules = policy(tiers=[{"from": 2, "referrer": {"fixed": 800}}])
    result = evaluate(rules, buy(), history())
    assert result.decisions == ()
    assert result.notes == ("The referrer's reward starts with the 2nd rewarded friend; "
                            "this is the 1st.",)
    assert evaluate(rules, buy(), history(1)).decisions[0].amount == 800


def test_a_known_friend_keeps_its_ordinal():
    rules = replace(EXAMPLE_POLICY, purchases="all")
    known = History(rewarded_friends=(11, 12, 13, 14))
    assert evaluate(rules, buy(friend=12, prior=1), known).decisions[0].rule == "referrer"
    assert evaluate(rules, buy(friend=13, prior=1), known).decisions[0].rule == (
        "tiers[0].referrer")
    # A new friend would be the 5th.
    assert [d.rule for d in evaluate(rules, buy(friend=99), known).decisions] == [
        "tiers[0].referrer", "milestones[0]", "friend"]


def test_milestone_for_the_fifth_new_friend():
    result = evaluate(EXAMPLE_POLICY, buy(12000), history(4))
    assert lines(result) == [
        ("referrer", "tiers[0].referrer", 1800,
         "Tier from the 3rd friend: 15% of $120.00 = $18.00."),
        ("referrer", "milestones[0]", 5000, "Milestone bonus for the 5th rewarded friend: $50.00."),
        FRIEND_LINE,
    ]
    assert result.notes == ()


@pytest.mark.parametrize("friends", [3, 5, 6])
def test_no_milestone_before_or_after_its_friend(friends):
    rules = [d.rule for d in evaluate(EXAMPLE_POLICY, buy(), history(friends)).decisions]
    assert "milestones[0]" not in rules


def test_no_milestone_for_a_repeat_fifth_friend():
    rules = replace(EXAMPLE_POLICY, purchases="all")
    result = evaluate(rules, buy(friend=5, prior=1, rewarded_before=True), history(5))
    assert lines(result) == [
        ("referrer", "tiers[0].referrer", 1800,
         "Tier from the 3rd friend: 15% of $120.00 = $18.00."),
    ]
    assert result.notes == ("The friend already received their reward.",)


def test_milestones_are_named_by_their_index():
    rules = policy(referrer={"fixed": 100},
                   milestones=[{"at": 3, "bonus": 300}, {"at": 1, "bonus": 111}])
    assert lines(evaluate(rules, buy(), history()))[1] == (
        "referrer", "milestones[1]", 111, "Milestone bonus for the 1st rewarded friend: $1.11.")
    assert lines(evaluate(rules, buy(), history(2)))[1][1] == "milestones[0]"


def test_a_milestone_needs_a_referrer_line_for_the_purchase():
    rules = policy(friend={"fixed": 500}, milestones=[{"at": 1, "bonus": 1000}])
    result = evaluate(rules, buy(), history())
    assert lines(result) == [FRIEND_LINE]
    assert result.notes == ("No milestone bonus for the 1st rewarded friend without a referrer "
                            "reward for this purchase.",)


def test_zero_decimal_currency():
    rules = parse_policy({"currency": "jpy", "referrer": {"percent_bps": 1000}})
    assert lines(evaluate(rules, buy(1205, currency="jpy"), history())) == [
        ("referrer", "referrer", 121, "10% of ¥1,205 = ¥121."),  # 120.5 rounds up
    ]


def test_percent_display_in_explanations():
    rules = policy(referrer={"percent_bps": 1250}, friend={"percent_bps": 5})
    assert lines(evaluate(rules, buy(10000), history())) == [
        ("referrer", "referrer", 1250, "12.5% of $100.00 = $12.50."),
        ("friend", "friend", 5, "0.05% of $100.00 = $0.05."),
    ]


@pytest.mark.parametrize(("bps", "text"), [
    (1000, "10%"), (1250, "12.5%"), (5, "0.05%"), (1, "0.01%"), (10, "0.1%"), (10000, "100%"),
    (1005, "10.05%"), (99, "0.99%"), (100, "1%"),
])
def test_percent_text(bps, text):
    assert percent_text(bps) == text


@pytest.mark.parametrize(("number", "text"), [
    (1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"),
    (21, "21st"), (22, "22nd"), (23, "23rd"), (101, "101st"), (111, "111th"), (112, "112th"),
])
def test_ordinal(number, text):
    assert ordinal(number) == text


# --------------------------------------------------------------------------- which purchases


def test_currency_mismatch_earns_nothing():
    result = evaluate(EXAMPLE_POLICY, buy(currency="eur"), history())
    assert result.decisions == ()
    assert result.notes == ("Purchases in eur earn nothing: the policy pays in usd.",)
    assert result.available_at == T0 + timedelta(days=30)


def test_currency_code_case_does_not_matter():
    assert lines(evaluate(EXAMPLE_POLICY, buy(currency="USD"), history()))[0][2] == 1200


@pytest.mark.parametrize(("amount", "paid"), [(1500, False), (1999, False), (2000, True)])
def test_min_purchase(amount, paid):
    result = evaluate(EXAMPLE_POLICY, buy(amount), history())
    assert bool(result.decisions) is paid
    if not paid:
        assert result.notes == (f"The purchase of ${amount // 100}.{amount % 100:02d} is under "
                                "the $20.00 minimum.",)


def test_min_purchase_note_example():
    assert evaluate(EXAMPLE_POLICY, buy(1500), history()).notes == (
        "The purchase of $15.00 is under the $20.00 minimum.",)


def test_first_purchase_only():
    result = evaluate(EXAMPLE_POLICY, buy(prior=1, rewarded_before=True), history(1))
    assert result.decisions == ()
    assert result.notes == ("Only the friend's first purchase earns a reward.",)


def test_all_purchases():
    rules = replace(EXAMPLE_POLICY, purchases="all")
    result = evaluate(rules, buy(prior=7, friend=1, rewarded_before=True), history(1))
    assert lines(result) == [("referrer", "referrer", 1200, "10% of $120.00 = $12.00.")]
    assert result.notes == ("The friend already received their reward.",)


def within(months: int) -> Policy:
    return replace(EXAMPLE_POLICY, purchases=months)


@pytest.mark.parametrize(("signed_up", "months", "deadline"), [
    (datetime(2024, 1, 31, 10, tzinfo=UTC), 1, datetime(2024, 2, 29, 10, tzinfo=UTC)),  # leap
    (datetime(2023, 1, 31, 10, tzinfo=UTC), 1, datetime(2023, 2, 28, 10, tzinfo=UTC)),
    (datetime(2023, 12, 31, 10, tzinfo=UTC), 2, datetime(2024, 2, 29, 10, tzinfo=UTC)),
    (datetime(2024, 3, 31, 10, tzinfo=UTC), 1, datetime(2024, 4, 30, 10, tzinfo=UTC)),
    (datetime(2024, 2, 29, 10, tzinfo=UTC), 12, datetime(2025, 2, 28, 10, tzinfo=UTC)),
    (datetime(2024, 1, 15, 10, tzinfo=UTC), 6, datetime(2024, 7, 15, 10, tzinfo=UTC)),
    (datetime(2024, 8, 31, 23, 59, 59, tzinfo=UTC), 120, datetime(2034, 8, 31, 23, 59, 59,
                                                                  tzinfo=UTC)),
])
def test_within_months_with_month_end_clamping(signed_up, months, deadline):
    assert add_months(signed_up, months) == deadline
    on_time = evaluate(within(months), buy(at=deadline, signed_up=signed_up, prior=3), history())
    assert on_time.decisions and on_time.notes == ()
    late = deadline + timedelta(seconds=1)
    result = evaluate(within(months), buy(at=late, signed_up=signed_up, prior=3), history())
    assert result.decisions == ()
    plural = "month" if months == 1 else "months"
    assert result.notes == (
        f"Only purchases within {months} {plural} of the friend's signup earn a reward; "
        f"this one came after {deadline:%Y-%m-%d %H:%M} UTC.",
    )


def test_within_months_counts_in_utc():
    # 2024-01-31 23:30 at UTC-2 is 2024-02-01 01:30 UTC, so the window ends 2024-03-01 01:30 UTC.
    signed_up = datetime(2024, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    at = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
    assert evaluate(within(1), buy(at=at, signed_up=signed_up), history()).decisions


def test_the_friend_is_rewarded_once():
    again = evaluate(replace(EXAMPLE_POLICY, purchases="all"),
                     buy(friend=1, prior=1, rewarded_before=True), history(1))
    assert [d.role for d in again.decisions] == ["referrer"]
    assert again.notes == ("The friend already received their reward.",)


def test_friend_percentage_with_cap():
    rules = policy(friend={"percent_bps": 500, "cap": 300})
    assert lines(evaluate(rules, buy(12000), history())) == [
        ("friend", "friend", 300, "5% of $120.00 = $6.00, capped at $3.00."),
    ]


def test_hold_days():
    assert evaluate(policy(friend={"fixed": 1}), buy(), history()).available_at == T0
    rules = policy(friend={"fixed": 1}, hold_days=365)
    assert evaluate(rules, buy(), history()).available_at == T0 + timedelta(days=365)


# --------------------------------------------------------------------------- limits


def limited(limits, **document) -> Policy:
    return policy(**{"referrer": {"percent_bps": 1000}, **document, "limits": limits})


@pytest.mark.parametrize(("limits", "counters", "note"), [
    ({"month": {"count": 10}}, {"month_count": 10},
     "The monthly limit of 10 rewards is reached; no reward."),
    ({"month": {"count": 1}}, {"month_count": 1},
     "The monthly limit of 1 reward is reached; no reward."),
    ({"lifetime": {"count": 100}}, {"lifetime_count": 100},
     "The lifetime limit of 100 rewards is reached; no reward."),
    ({"month": {"count": 10}, "lifetime": {"count": 100}},
     {"month_count": 10, "lifetime_count": 100},
     "The lifetime limit of 100 rewards is reached; no reward."),
    ({"month": {"amount": 50000}}, {"month_amount": 50000},
     "The monthly limit of $500.00 is reached; no reward."),
    ({"month": {"amount": 50000}}, {"month_amount": 60000},  # e.g. under an older policy
     "The monthly limit of $500.00 is reached; no reward."),
    ({"lifetime": {"amount": 50000}}, {"lifetime_amount": 50000},
     "The lifetime limit of $500.00 is reached; no reward."),
    # A reached count skips even when some amount remains.
    ({"month": {"count": 2, "amount": 50000}}, {"month_count": 2, "month_amount": 0},
     "The monthly limit of 2 rewards is reached; no reward."),
])
def test_limit_reached_skips_the_referrer_line(limits, counters, note):
    result = evaluate(limited(limits, friend={"fixed": 500}), buy(), history(**counters))
    assert lines(result) == [FRIEND_LINE]  # the friend's reward has no limits
    assert result.notes == (note,)


@pytest.mark.parametrize(("limits", "counters"), [
    ({"month": {"count": 10}}, {"month_count": 9}),
    ({"lifetime": {"count": 100}}, {"lifetime_count": 99, "month_count": 50}),
    ({"month": {"amount": 50000}}, {"month_amount": 48800}),
    ({"lifetime": {"amount": 50000}}, {"lifetime_amount": 48800}),
])
def test_just_under_a_limit_pays_in_full(limits, counters):
    result = evaluate(limited(limits), buy(), history(**counters))
    assert lines(result) == [("referrer", "referrer", 1200, "10% of $120.00 = $12.00.")]
    assert result.notes == ()


@pytest.mark.parametrize(("limits", "counters", "paid", "acted"), [
    ({"month": {"amount": 50000}}, {"month_amount": 49700}, "$3.00", "monthly limit of $500.00"),
    ({"lifetime": {"amount": 50000}}, {"lifetime_amount": 49700}, "$3.00",
     "lifetime limit of $500.00"),
    # Both act: the tighter one wins.
    ({"month": {"amount": 20000}, "lifetime": {"amount": 50000}},
     {"month_amount": 19500, "lifetime_amount": 49700}, "$3.00", "lifetime limit of $500.00"),
    ({"month": {"amount": 20000}, "lifetime": {"amount": 50000}},
     {"month_amount": 19800, "lifetime_amount": 49700}, "$2.00", "monthly limit of $200.00"),
    # Both leave the same: the lifetime limit is named.
    ({"month": {"amount": 20000}, "lifetime": {"amount": 50000}},
     {"month_amount": 19700, "lifetime_amount": 49700}, "$3.00", "lifetime limit of $500.00"),
])
def test_amount_limit_pays_what_remains(limits, counters, paid, acted):
    result = evaluate(limited(limits), buy(), history(**counters))
    cents = int(paid[1:].replace(".", ""))
    assert lines(result) == [(
        "referrer", "referrer", cents,
        f"10% of $120.00 = $12.00. Limited to {paid} by the {acted}.",
    )]
    assert result.notes == (f"The {acted} limited the reward to {paid}.",)


def test_limited_after_a_cap():
    rules = limited({"month": {"amount": 50000}}, referrer={"percent_bps": 1000, "cap": 1000})
    assert lines(evaluate(rules, buy(), history(month_amount=49700)))[0][3] == (
        "10% of $120.00 = $12.00, capped at $10.00. Limited to $3.00 by the monthly limit "
        "of $500.00.")


def test_the_bonus_counts_after_the_referrer_line():
    rules = policy(referrer={"fixed": 1000}, milestones=[{"at": 1, "bonus": 2000}],
                   limits={"month": {"count": 10}})
    result = evaluate(rules, buy(), history(month_count=9))
    assert lines(result) == [("referrer", "referrer", 1000, "A fixed $10.00 for the referral.")]
    assert result.notes == ("The monthly limit of 10 rewards is reached; no milestone bonus.",)
    both = evaluate(rules, buy(), history(month_count=8))
    assert [d.amount for d in both.decisions] == [1000, 2000]


@pytest.mark.parametrize(("period", "name"), [("month", "monthly"), ("lifetime", "lifetime")])
def test_the_bonus_gets_what_the_referrer_line_left(period, name):
    rules = policy(referrer={"fixed": 1000}, milestones=[{"at": 1, "bonus": 2000}],
                   limits={period: {"amount": 2500}})
    result = evaluate(rules, buy(), history())
    assert lines(result) == [
        ("referrer", "referrer", 1000, "A fixed $10.00 for the referral."),
        ("referrer", "milestones[0]", 1500, "Milestone bonus for the 1st rewarded friend: $20.00. "
                                            f"Limited to $15.00 by the {name} limit of $25.00."),
    ]
    assert result.notes == (f"The {name} limit of $25.00 limited the milestone bonus to $15.00.",)
    nothing_left = evaluate(rules, buy(), history(**{f"{period}_amount": 1500}))
    assert [d.rule for d in nothing_left.decisions] == ["referrer"]
    assert nothing_left.notes == (f"The {name} limit of $25.00 is reached; no milestone bonus.",)


def test_the_bonus_counts_against_the_lifetime_count_too():
    rules = policy(referrer={"fixed": 1000}, milestones=[{"at": 1, "bonus": 2000}],
                   limits={"lifetime": {"count": 5}})
    result = evaluate(rules, buy(), history(lifetime_count=4))
    assert [d.rule for d in result.decisions] == ["referrer"]
    assert result.notes == ("The lifetime limit of 5 rewards is reached; no milestone bonus.",)


def test_no_milestone_when_the_referrer_line_was_skipped():
    rules = policy(referrer={"fixed": 1000}, milestones=[{"at": 1, "bonus": 2000}],
                   limits={"lifetime": {"count": 3}})
    result = evaluate(rules, buy(), history(lifetime_count=3))
    assert result.decisions == ()
    assert result.notes == (
        "The lifetime limit of 3 rewards is reached; no reward.",
        "No milestone bonus for the 1st rewarded friend without a referrer reward for this "
        "purchase.",
    )


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(("amount", "bps", "expected"), [
    (1000, 5, 1),  # 0.5 -> 1 (banker's: 0)
    (5000, 5, 3),  # 2.5 -> 3 (banker's: 2)
    (125, 1000, 13),  # 12.5 -> 13 (banker's: 12)
    (25000, 5, 13),  # 12.5 -> 13 (banker's: 12)
    (3000, 5, 2),  # 1.5 -> 2 (banker's too)
    (100, 5, 0),  # 0.05 -> 0
    (1500, 5, 1),  # 0.75 -> 1
    (1499, 5, 1),  # 0.7495 -> 1
    (999, 5, 0),  # 0.4995 -> 0
    (12000, 1000, 1200),
    (1, 10000, 1),
    (0, 1000, 0),
])
def test_percent_of_rounds_half_up(amount, bps, expected):
    assert percent_of(amount, bps) == expected


def test_half_up_differs_from_bankers_rounding_in_an_evaluation():
    exact = Decimal(5000 * 5) / 10000  # 2.5 cents
    assert int(exact.quantize(Decimal(1), ROUND_HALF_EVEN)) == 2
    rules = policy(referrer={"percent_bps": 5})
    assert lines(evaluate(rules, buy(5000), history())) == [
        ("referrer", "referrer", 3, "0.05% of $50.00 = $0.03."),
    ]


def test_a_reward_rounding_to_zero_is_a_note_not_a_line():
    rules = policy(referrer={"percent_bps": 5}, friend={"percent_bps": 5})
    result = evaluate(rules, buy(99), history())
    assert result.decisions == ()
    assert result.notes == ("0.05% of $0.99 = $0.00, so the referrer earns nothing.",
                            "0.05% of $0.99 = $0.00, so the friend earns nothing.")


@pytest.mark.parametrize(("args", "expected"), [
    ((1000, 1, 3), 333), ((1000, 2, 3), 667), ((1000, 1, 8), 125), ((5, 1, 2), 3),
    ((1, 1, 2), 1), ((3, 1, 2), 2), ((1200, 0, 12000), 0), ((1200, 12000, 12000), 1200),
    ((1200, 3000, 12000), 300), ((-5, 1, 2), -3),
])
def test_pro_rata(args, expected):
    assert pro_rata(*args) == expected


def test_pro_rata_needs_a_positive_whole():
    with pytest.raises(ValueError, match="whole must be positive"):
        pro_rata(100, 0, 0)


# --------------------------------------------------------------------------- purity


# The pure policy engine (the import-linter contract in pyproject.toml names the same, but
# __init__), and the modules of rewards/policies that use the database.
PURE_MODULES = ("__init__", "policy", "checker", "parse_parts", "parse", "canonical",
                "rounding", "wording", "months", "compiled", "limits", "evaluate", "cautions")
STATEFUL_MODULES = ("versions", "drafts", "replay")
ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "rewards" / "policies"


def test_every_policy_module_is_listed_as_pure_or_stateful():
    modules = {path.stem for path in POLICIES.glob("*.py")}
    modules |= {path.name for path in POLICIES.iterdir() if (path / "__init__.py").exists()}
    assert modules == set(PURE_MODULES) | set(STATEFUL_MODULES)


def test_the_import_contract_names_every_pure_module():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [pure] = [contract for contract in contracts["contracts"]
              if any(name.startswith("rewards.policies.")
                     for name in contract.get("source_modules", ()))]
    assert pure["type"] == "forbidden"
    assert set(pure["source_modules"]) == {
        f"rewards.policies.{name}" for name in PURE_MODULES if name != "__init__"}


def test_the_policy_modules_import_only_the_stdlib_and_money():
    allowed = {"rewards.money", "rewards.policies"} | {
        f"rewards.policies.{name}" for name in PURE_MODULES if name != "__init__"}
    for source in (POLICIES / f"{name}.py" for name in PURE_MODULES):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name in allowed or name.split(".")[0] in sys.stdlib_module_names, (
                    source.name, name)


# --------------------------------------------------------------------------- properties

small_amounts = st.integers(1, 100_000)
rules = st.one_of(
    st.builds(lambda fixed: {"fixed": fixed}, small_amounts),
    st.builds(lambda bps: {"percent_bps": bps}, st.integers(1, 10_000)),
    st.builds(lambda bps, cap: {"percent_bps": bps, "cap": cap}, st.integers(1, 10_000),
              small_amounts),
)
tier_lists = st.lists(st.integers(2, 12), unique=True, max_size=4).flatmap(
    lambda starts: st.tuples(*[rules.map(lambda r, s=s: {"from": s, "referrer": r})
                               for s in sorted(starts)]).map(list)
)
milestone_lists = st.lists(
    st.builds(lambda at, bonus: {"at": at, "bonus": bonus}, st.integers(1, 12), small_amounts),
    max_size=4, unique_by=lambda m: m["at"],
)
limit_objects = st.fixed_dictionaries(
    {}, optional={"count": st.integers(1, 12), "amount": st.integers(1, 200_000)}
).filter(bool)
documents = st.fixed_dictionaries(
    {"currency": st.just("usd")},
    optional={
        "hold_days": st.integers(0, 365),
        "min_purchase": st.integers(0, 5000),  # qualifying purchases are >= 5000
        "purchases": st.one_of(st.sampled_from(["first", "all"]),
                               st.builds(lambda n: {"within_months": n}, st.integers(1, 24))),
        "referrer": rules,
        "tiers": tier_lists,
        "milestones": milestone_lists,
        "friend": rules,
        "limits": st.fixed_dictionaries({}, optional={"month": limit_objects,
                                                      "lifetime": limit_objects}),
    },
).filter(lambda d: any(d.get(k) for k in ("referrer", "friend", "tiers", "milestones")))
policies = documents.map(parse_policy)

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(UTC))


@st.composite
def purchases(draw, qualifying: bool = False):
    """Any purchase, or (`qualifying`) one every policy above rewards: usd, at least $50.00,
    the friend's first, within a month of the signup."""
    signed_up = draw(moments)
    if qualifying:
        amount = draw(st.integers(5000, 10**7))
        currency, prior, days = "usd", 0, draw(st.integers(0, 27))
    else:
        amount = draw(st.one_of(st.integers(1, 10**7), st.sampled_from([1, 50, 99, 2000, 12000])))
        currency = draw(st.sampled_from(["usd", "usd", "usd", "eur"]))
        prior, days = draw(st.integers(0, 3)), draw(st.integers(0, 1000))
    return Purchase(
        amount=amount,
        currency=currency,
        occurred_at=signed_up + timedelta(days=days),
        friend_id=draw(st.integers(1, 15)),
        friend_signed_up_at=signed_up,
        friend_prior_purchases=prior,
        friend_rewarded_before=draw(st.booleans()),
    )


@st.composite
def histories(draw, rules: Policy | None = None):
    """Histories within the policy's limits (any history when `rules` is None)."""

    def counter(limit, attribute, high):
        bound = getattr(limit, attribute) if limit is not None else None
        if bound is None:
            return draw(st.integers(0, high))
        # Often at or just under the limit, where the limits act.
        return draw(st.one_of(st.integers(0, bound), st.sampled_from([bound, max(0, bound - 1)]),
                              st.integers(max(0, bound - 20_000), bound)))

    month = rules.month_limit if rules else None
    life = rules.lifetime_limit if rules else None
    return History(
        rewarded_friends=tuple(draw(st.lists(st.integers(1, 15), unique=True, max_size=12))),
        month_count=counter(month, "count", 30),
        month_amount=counter(month, "amount", 10**6),
        lifetime_count=counter(life, "count", 300),
        lifetime_amount=counter(life, "amount", 10**7),
    )


def referrer_rule(rules: Policy, name: str):
    if name == "referrer":
        return rules.referrer
    index = int(name[len("tiers["):name.index("]")])
    return rules.tiers[index].referrer


@given(policies, st.one_of(purchases(qualifying=True), purchases()), st.data())
def test_amounts_are_positive_and_never_above_the_rule(rules, purchase, data):
    result = evaluate(rules, purchase, data.draw(histories()))
    assert result.available_at == purchase.occurred_at + timedelta(days=rules.hold_days)
    for decision in result.decisions:
        assert isinstance(decision, Decision)
        assert type(decision.amount) is int and decision.amount > 0
        assert decision.explanation.endswith(".")
        if decision.role == "friend":
            rule = rules.friend
            expected = rule.fixed if rule.fixed is not None else percent_of(
                purchase.amount, rule.percent_bps)
            if rule.cap is not None:
                expected = min(expected, rule.cap)
            assert decision.amount == expected  # no limits on the friend's reward
        elif decision.rule.startswith("milestones["):
            index = int(decision.rule[len("milestones["):-1])
            assert decision.amount <= rules.milestones[index].bonus
        else:
            rule = referrer_rule(rules, decision.rule)
            if rule.fixed is not None:
                assert decision.amount <= rule.fixed
            else:
                assert decision.amount <= percent_of(purchase.amount, rule.percent_bps)
                assert decision.amount <= purchase.amount
                if rule.cap is not None:
                    assert decision.amount <= rule.cap
    if purchase.currency != rules.currency or purchase.amount < rules.min_purchase:
        assert result.decisions == ()
        assert len(result.notes) == 1


@settings(max_examples=5 * settings.default.max_examples)
@given(st.data())
def test_limits_are_honoured(data):
    rules = data.draw(policies.filter(lambda p: p.month_limit or p.lifetime_limit))
    before = data.draw(histories(rules))
    purchase = data.draw(st.one_of(purchases(qualifying=True), purchases()))
    result = evaluate(rules, purchase, before)
    referrer = [d.amount for d in result.decisions if d.role == "referrer"]
    for limit, count, amount in (
        (rules.month_limit, before.month_count, before.month_amount),
        (rules.lifetime_limit, before.lifetime_count, before.lifetime_amount),
    ):
        if limit is None:
            continue
        if limit.count is not None:
            assert count + len(referrer) <= limit.count
        if limit.amount is not None:
            assert amount + sum(referrer) <= limit.amount


@given(documents, st.one_of(purchases(qualifying=True), purchases()), st.data())
def test_deterministic(document, purchase, data):
    before = data.draw(histories())
    first = evaluate(parse_policy(document), purchase, before)
    rules = parse_policy(document)  # an equal policy, a different object
    assert evaluate(rules, purchase, before) == first
    assert evaluate(rules, purchase, before) == first


@given(policies, st.data())
def test_tier_boundaries_are_exact(rules, data):
    assume(rules.tiers)
    rules = replace(rules, min_purchase=0, purchases="all", month_limit=None,
                    lifetime_limit=None)
    index = data.draw(st.integers(0, len(rules.tiers) - 1))
    start = rules.tiers[index].start
    amount = data.draw(st.integers(10_000, 10**7))  # every percentage pays at least 1

    def rule_for(place: int) -> str | None:
        purchase = buy(amount, friend=NEW_FRIEND)
        names = [d.rule for d in evaluate(rules, purchase, history(place - 1)).decisions
                 if d.role == "referrer" and not d.rule.startswith("milestones")]
        return names[0] if names else None

    before = f"tiers[{index - 1}].referrer" if index else (
        "referrer" if rules.referrer is not None else None)
    assert rule_for(start - 1) == before
    assert rule_for(start) == f"tiers[{index}].referrer"


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_percent_of_is_half_up_exactly(amount, bps):
    expected = (2 * amount * bps + 10_000) // 20_000
    assert percent_of(amount, bps) == expected
    assert 0 <= percent_of(amount, bps) <= amount
    exact = (Decimal(amount) * bps / 10_000).quantize(Decimal(1), ROUND_HALF_UP)
    assert percent_of(amount, bps) == int(exact)


@given(st.integers(0, 10**12), st.integers(1, 10**9), st.data())
def test_pro_rata_bounds(amount, whole, data):
    part = data.draw(st.integers(0, whole))
    other = data.draw(st.integers(0, whole))
    share = pro_rata(amount, part, whole)
    assert 0 <= share <= amount
    if part <= other:
        assert share <= pro_rata(amount, other, whole)
    assert pro_rata(amount, whole, whole) == amount
    assert pro_rata(amount, 0, whole) == 0
    exact = (Decimal(amount * part) / Decimal(whole)).quantize(Decimal(1), ROUND_HALF_UP)
    assert share == int(exact)


@given(moments, st.integers(0, 240))
def test_add_months_clamps_to_the_month_end(moment, months):
    later = add_months(moment, months)
    assert (later.year * 12 + later.month) - (moment.year * 12 + moment.month) == months
    assert later.day <= moment.day
    assert later.time() == moment.time() and later.tzinfo == moment.tzinfo
    if later.day < moment.day:  # clamped: the last day of its month
        assert (later + timedelta(days=1)).month != later.month


# --------------------------------------------------------------------------- cautions

TIER_FROM_3 = [{"from": 3, "referrer": {"fixed": 700}}]
MILESTONE_AT_2 = [{"at": 2, "bonus": 900}]


def referrer_rules_over_friends(p: Policy, friends: int = 8) -> list[str]:
    """The referrer's rules paid to `friends` new friends buying one after the other, the
    history growing as the reward job's would."""
    rewarded: list[int] = []
    paid = []
    for friend in range(1, friends + 1):
        decisions = evaluate(p, buy(friend=friend), History(tuple(rewarded))).decisions
        rules = [d.rule for d in decisions if d.role == "referrer"]
        if rules:
            rewarded.append(friend)
        paid += rules
    return paid


@pytest.mark.parametrize("document", [
    EXAMPLE,
    {"currency": "usd", "referrer": {"fixed": 100}, "tiers": TIER_FROM_3,
     "milestones": MILESTONE_AT_2},
    {"currency": "usd", "friend": {"fixed": 500}},
])
def test_policies_whose_every_part_can_pay_have_no_cautions(document):
    p = parse_policy(document)
    assert cautions(p) == []
    paid = referrer_rules_over_friends(p)
    assert all(any(rule.startswith(f"tiers[{i}]") for rule in paid)
               for i in range(len(p.tiers)))
    assert all(f"milestones[{i}]" in paid for i in range(len(p.milestones)))


def test_tiers_and_milestones_without_a_base_rule_are_flagged_as_never_reached():
    p = parse_policy({"currency": "usd", "friend": {"fixed": 500}, "tiers": TIER_FROM_3,
                      "milestones": MILESTONE_AT_2})
    assert cautions(p) == [
        "tiers: never reached: a friend counts once the referrer has been rewarded for "
        "them, and with no base `referrer` rule nothing is paid before the 3rd friend. Add "
        "a base `referrer` rule.",
        "milestones: never reached: a milestone bonus comes with a referrer reward, and "
        "with no base `referrer` rule the referrer is never rewarded. Add a base "
        "`referrer` rule.",
    ]
    assert referrer_rules_over_friends(p) == []  # what the caution warns of


def test_milestones_alone_are_flagged():
    p = parse_policy({"currency": "usd", "friend": {"fixed": 500},
                      "milestones": MILESTONE_AT_2})
    assert [line.split(":")[0] for line in cautions(p)] == ["milestones"]
    assert referrer_rules_over_friends(p) == []
