"""Policy documents: every validation rule with its located message, and the round trip."""

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.policies import (
    Limit,
    Milestone,
    Policy,
    PolicyInvalid,
    RewardRule,
    Tier,
    parse_policy,
    to_document,
)

# The example document of API.md, "Policy documents (JSON)".
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
MINIMAL = {"currency": "usd", "friend": {"fixed": 500}}


def errors_of(document, **kwargs) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(document, **kwargs)
    return caught.value.errors


def with_(base: dict, **changes) -> dict:
    """A deep copy of `base` with top-level keys replaced (a value of ... deletes it)."""
    document = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            document.pop(key, None)
        else:
            document[key] = value
    return document


# --------------------------------------------------------------------------- valid documents


def test_the_api_example_parses():
    policy = parse_policy(EXAMPLE, currency="usd")
    assert policy == Policy(
        currency="usd",
        hold_days=30,
        min_purchase=2000,
        purchases="first",
        referrer=RewardRule(percent_bps=1000, cap=5000),
        tiers=(Tier(start=3, referrer=RewardRule(percent_bps=1500, cap=8000)),),
        milestones=(Milestone(at=5, bonus=5000),),
        friend=RewardRule(fixed=500),
        month_limit=Limit(count=10, amount=50000),
        lifetime_limit=Limit(count=100),
    )


def test_the_api_example_parses_from_json_text():
    assert parse_policy(json.loads(json.dumps(EXAMPLE))) == parse_policy(EXAMPLE)


def test_defaults():
    policy = parse_policy(MINIMAL)
    assert policy == Policy(currency="usd", friend=RewardRule(fixed=500))
    assert (policy.hold_days, policy.min_purchase, policy.purchases) == (0, 0, "first")
    assert policy.tiers == () and policy.milestones == ()
    assert policy.month_limit is None and policy.lifetime_limit is None


def test_round_trip_of_the_example_is_the_same_document():
    policy = parse_policy(EXAMPLE)
    assert to_document(policy) == EXAMPLE
    assert parse_policy(to_document(policy)) == policy


def test_canonical_document_spells_out_defaults_and_leaves_out_absent_options():
    assert to_document(parse_policy(MINIMAL)) == {
        "currency": "usd",
        "hold_days": 0,
        "min_purchase": 0,
        "purchases": "first",
        "friend": {"fixed": 500},
    }


def test_within_months_round_trips():
    policy = parse_policy(with_(MINIMAL, purchases={"within_months": 6}))
    assert policy.purchases == 6
    assert to_document(policy)["purchases"] == {"within_months": 6}
    assert parse_policy(to_document(policy)) == policy


def test_canonical_document_is_json():
    assert json.loads(json.dumps(to_document(parse_policy(EXAMPLE)))) == EXAMPLE


@pytest.mark.parametrize("changes", [
    {"hold_days": 0}, {"hold_days": 365}, {"min_purchase": 0}, {"min_purchase": 10**12},
    {"purchases": "all"}, {"purchases": {"within_months": 1}},
    {"purchases": {"within_months": 120}},
    {"referrer": {"fixed": 1}}, {"referrer": {"fixed": 10**9}},
    {"referrer": {"percent_bps": 1}}, {"referrer": {"percent_bps": 10000, "cap": 10**9}},
    {"referrer": {"percent_bps": 10000, "cap": 1}},
    {"tiers": [{"from": 2, "referrer": {"fixed": 1}}]},
    {"tiers": [{"from": n, "referrer": {"fixed": 1}} for n in range(2, 22)]},  # 20 tiers
    {"milestones": [{"at": n, "bonus": 1} for n in range(1, 51)]},  # 50 milestones
    {"milestones": [{"at": 3, "bonus": 1}, {"at": 1, "bonus": 10**9}]},  # any order
    {"limits": {}}, {"limits": {"month": {"count": 1}}}, {"limits": {"lifetime": {"amount": 1}}},
    {"limits": {"month": {"count": 10**6, "amount": 10**15}}},
])
def test_valid_variations(changes):
    parse_policy(with_(MINIMAL, **changes))


@pytest.mark.parametrize("only", [
    {"referrer": {"fixed": 100}},
    {"friend": {"fixed": 100}},
    {"tiers": [{"from": 2, "referrer": {"fixed": 100}}]},
    {"milestones": [{"at": 1, "bonus": 100}]},
])
def test_any_one_paying_key_is_enough(only):
    parse_policy({"currency": "usd", **only})


# --------------------------------------------------------------------------- the document


@pytest.mark.parametrize("document", [None, [], "usd", 3, json.dumps(MINIMAL)])
def test_the_document_must_be_an_object(document):
    assert errors_of(document) == ["policy: must be a JSON object"]


def test_the_policy_must_reward_someone():
    assert errors_of({"currency": "usd"}) == ["policy: must reward the referrer or the friend"]
    assert errors_of({"currency": "usd", "tiers": [], "milestones": [], "hold_days": 3}) == [
        "policy: must reward the referrer or the friend"
    ]


def test_an_invalid_paying_key_is_reported_for_itself_only():
    assert errors_of({"currency": "usd", "referrer": {"fixed": 0}}) == [
        "referrer.fixed: must be between 1 and 1000000000"
    ]


@pytest.mark.parametrize(("document", "error"), [
    ({**MINIMAL, "colour": "red"}, "colour: unknown key"),
    ({**MINIMAL, "Currency": "usd"}, "Currency: unknown key"),
    ({**MINIMAL, "referrer": {"fixed": 5, "note": "x"}}, "referrer.note: unknown key"),
    ({**MINIMAL, "friend": {"fixed": 5, "max": 9}}, "friend.max: unknown key"),
    ({**MINIMAL, "tiers": [{"from": 2, "referrer": {"fixed": 1}, "colour": "red"}]},
     "tiers[0].colour: unknown key"),
    ({**MINIMAL, "tiers": [{"from": 2, "referrer": {"fixed": 1, "x": 0}}]},
     "tiers[0].referrer.x: unknown key"),
    ({**MINIMAL, "milestones": [{"at": 2, "bonus": 1, "label": "gold"}]},
     "milestones[0].label: unknown key"),
    ({**MINIMAL, "limits": {"week": {"count": 1}}}, "limits.week: unknown key"),
    ({**MINIMAL, "limits": {"month": {"count": 1, "days": 30}}}, "limits.month.days: unknown key"),
    ({**MINIMAL, "purchases": {"within_months": 2, "from": "signup"}},
     "purchases.from: unknown key"),
])
def test_unknown_keys_at_every_level(document, error):
    assert errors_of(document) == [error]


# --------------------------------------------------------------------------- currency


@pytest.mark.parametrize("value", ["USD", "us", "usdd", "u$d", "", 840, None, ["usd"], "üsd"])
def test_currency_must_be_three_lowercase_letters(value):
    assert errors_of(with_(MINIMAL, currency=value)) == [
        "currency: must be 3 lowercase letters, like usd"
    ]


def test_currency_is_required():
    assert errors_of(with_(MINIMAL, currency=...)) == ["currency: is required"]


def test_currency_must_be_the_programs():
    assert errors_of(MINIMAL, currency="eur") == ["currency: must be the program's currency, eur"]
    assert errors_of(MINIMAL, currency="EUR") == ["currency: must be the program's currency, eur"]
    assert parse_policy(MINIMAL, currency="usd").currency == "usd"
    assert parse_policy(MINIMAL, currency="USD").currency == "usd"
    assert parse_policy(with_(MINIMAL, currency="eur"), currency="eur").currency == "eur"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("changes", "error"), [
    ({"hold_days": -1}, "hold_days: must be between 0 and 365"),
    ({"hold_days": 366}, "hold_days: must be between 0 and 365"),
    ({"hold_days": 1.5}, "hold_days: must be a whole number"),
    ({"hold_days": 30.0}, "hold_days: must be a whole number"),
    ({"hold_days": "30"}, "hold_days: must be a whole number"),
    ({"hold_days": True}, "hold_days: must be a whole number"),
    ({"hold_days": None}, "hold_days: must be a whole number"),
    ({"min_purchase": -1}, "min_purchase: must be between 0 and 1000000000000"),
    ({"min_purchase": 10**12 + 1}, "min_purchase: must be between 0 and 1000000000000"),
    ({"min_purchase": 20.0}, "min_purchase: must be a whole number of minor units"),
    ({"min_purchase": 19.99}, "min_purchase: must be a whole number of minor units"),
    ({"min_purchase": False}, "min_purchase: must be a whole number of minor units"),
])
def test_hold_days_and_min_purchase(changes, error):
    assert errors_of(with_(MINIMAL, **changes)) == [error]


@pytest.mark.parametrize(("purchases", "error"), [
    ("every", 'purchases: must be "first", "all" or {"within_months": N}'),
    ("First", 'purchases: must be "first", "all" or {"within_months": N}'),
    (6, 'purchases: must be "first", "all" or {"within_months": N}'),
    (None, 'purchases: must be "first", "all" or {"within_months": N}'),
    (["first"], 'purchases: must be "first", "all" or {"within_months": N}'),
    ({}, "purchases.within_months: is required"),
    ({"within_months": 0}, "purchases.within_months: must be between 1 and 120"),
    ({"within_months": 121}, "purchases.within_months: must be between 1 and 120"),
    ({"within_months": 6.0}, "purchases.within_months: must be a whole number"),
    ({"within_months": True}, "purchases.within_months: must be a whole number"),
])
def test_purchases(purchases, error):
    assert errors_of(with_(MINIMAL, purchases=purchases)) == [error]


# --------------------------------------------------------------------------- reward rules


@pytest.mark.parametrize("role", ["referrer", "friend"])
@pytest.mark.parametrize(("rule", "errors"), [
    ({"fixed": 0}, ["{r}.fixed: must be between 1 and 1000000000"]),
    ({"fixed": -500}, ["{r}.fixed: must be between 1 and 1000000000"]),
    ({"fixed": 10**9 + 1}, ["{r}.fixed: must be between 1 and 1000000000"]),
    ({"fixed": 5.0}, ["{r}.fixed: must be a whole number of minor units"]),
    ({"fixed": 4.99}, ["{r}.fixed: must be a whole number of minor units"]),
    ({"fixed": "500"}, ["{r}.fixed: must be a whole number of minor units"]),
    ({"fixed": True}, ["{r}.fixed: must be a whole number of minor units"]),
    ({"percent_bps": 0}, ["{r}.percent_bps: must be between 1 and 10000"]),
    ({"percent_bps": 10001}, ["{r}.percent_bps: must be between 1 and 10000"]),
    ({"percent_bps": 12.5}, ["{r}.percent_bps: must be a whole number"]),
    ({"percent_bps": True}, ["{r}.percent_bps: must be a whole number"]),
    ({"percent_bps": 1000, "cap": 0}, ["{r}.cap: must be between 1 and 1000000000"]),
    ({"percent_bps": 1000, "cap": 10**9 + 1}, ["{r}.cap: must be between 1 and 1000000000"]),
    ({"percent_bps": 1000, "cap": 50.5}, ["{r}.cap: must be a whole number of minor units"]),
    ({"fixed": 500, "cap": 100}, ["{r}.cap: only goes with percent_bps, not with fixed"]),
    ({"fixed": 500, "percent_bps": 1000}, ["{r}: give either fixed or percent_bps, not both"]),
    ({}, ["{r}: give fixed or percent_bps"]),
    ({"cap": 100}, ["{r}: give fixed or percent_bps"]),
    ({"fixed": 0, "percent_bps": 0}, [
        "{r}: give either fixed or percent_bps, not both",
        "{r}.fixed: must be between 1 and 1000000000",
        "{r}.percent_bps: must be between 1 and 10000",
    ]),
])
def test_reward_rules(role, rule, errors):
    document = {"currency": "usd", "referrer": {"fixed": 1}, "friend": {"fixed": 1}, role: rule}
    assert errors_of(document) == [e.format(r=role) for e in errors]


@pytest.mark.parametrize("value", [500, None, [], "10%", [{"fixed": 1}]])
def test_a_rule_must_be_an_object(value):
    assert errors_of({"currency": "usd", "referrer": value}) == [
        "referrer: must be a JSON object"
    ]


# --------------------------------------------------------------------------- tiers


def tier(start, rule=None):
    return {"from": start, "referrer": rule or {"percent_bps": 1500}}


@pytest.mark.parametrize(("tiers", "errors"), [
    ({"from": 2}, ["tiers: must be a list"]),
    ([tier(1)], ["tiers[0].from: must be at least 2"]),
    ([tier(0)], ["tiers[0].from: must be at least 2"]),
    ([tier(2.0)], ["tiers[0].from: must be a whole number"]),
    ([tier(True)], ["tiers[0].from: must be a whole number"]),
    ([tier(3), tier(3)], ["tiers[1].from: must be greater than tiers[0].from"]),
    ([tier(5), tier(4)], ["tiers[1].from: must be greater than tiers[0].from"]),
    ([tier(2), tier(5), tier(5)], ["tiers[2].from: must be greater than tiers[1].from"]),
    ([tier(2), tier(1), tier(2)], [
        "tiers[1].from: must be at least 2",
        "tiers[2].from: must be greater than tiers[0].from",
    ]),
    ([{"referrer": {"fixed": 1}}], ["tiers[0].from: is required"]),
    ([{"from": 2}], ["tiers[0].referrer: is required"]),
    ([tier(2), 3], ["tiers[1]: must be a JSON object"]),
    ([tier(2, {"percent_bps": 0})], ["tiers[0].referrer.percent_bps: must be between 1 and 10000"]),
    ([tier(2, {"fixed": 10, "cap": 5})], ["tiers[0].referrer.cap: only goes with percent_bps, "
                                          "not with fixed"]),
    ([tier(n) for n in range(2, 23)], ["tiers: must have at most 20 tiers"]),
])
def test_tiers(tiers, errors):
    assert errors_of(with_(MINIMAL, tiers=tiers)) == errors


# --------------------------------------------------------------------------- milestones


@pytest.mark.parametrize(("milestones", "errors"), [
    ({"at": 5, "bonus": 1}, ["milestones: must be a list"]),
    ([{"at": 0, "bonus": 100}], ["milestones[0].at: must be at least 1"]),
    ([{"at": 1.0, "bonus": 100}], ["milestones[0].at: must be a whole number"]),
    ([{"at": 5, "bonus": 0}], ["milestones[0].bonus: must be between 1 and 1000000000"]),
    ([{"at": 5, "bonus": 10**9 + 1}], ["milestones[0].bonus: must be between 1 and 1000000000"]),
    ([{"at": 5, "bonus": 50.0}], ["milestones[0].bonus: must be a whole number of minor units"]),
    ([{"at": 5, "bonus": True}], ["milestones[0].bonus: must be a whole number of minor units"]),
    ([{"bonus": 100}], ["milestones[0].at: is required"]),
    ([{"at": 5}], ["milestones[0].bonus: is required"]),
    (["5"], ["milestones[0]: must be a JSON object"]),
    ([{"at": 5, "bonus": 1}, {"at": 2, "bonus": 1}, {"at": 5, "bonus": 2}],
     ["milestones[2].at: must differ from milestones[0].at"]),
    ([{"at": n, "bonus": 1} for n in range(1, 52)],
     ["milestones: must have at most 50 milestones"]),
])
def test_milestones(milestones, errors):
    assert errors_of(with_(MINIMAL, milestones=milestones)) == errors


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(("limits", "errors"), [
    ([], ["limits: must be a JSON object"]),
    ({"month": 10}, ["limits.month: must be a JSON object"]),
    ({"month": {}}, ["limits.month: give count, amount or both"]),
    ({"lifetime": {}}, ["limits.lifetime: give count, amount or both"]),
    ({"month": {"count": 0}}, ["limits.month.count: must be at least 1"]),
    ({"month": {"count": 2.0}}, ["limits.month.count: must be a whole number"]),
    ({"month": {"count": True}}, ["limits.month.count: must be a whole number"]),
    ({"month": {"amount": 0}}, ["limits.month.amount: must be at least 1"]),
    ({"month": {"amount": 100.0}}, ["limits.month.amount: must be a whole number of minor units"]),
    ({"lifetime": {"count": -1, "amount": -1}}, [
        "limits.lifetime.count: must be at least 1",
        "limits.lifetime.amount: must be at least 1",
    ]),
    ({"month": {"count": 0}, "lifetime": None}, [
        "limits.month.count: must be at least 1",
        "limits.lifetime: must be a JSON object",
    ]),
])
def test_limits(limits, errors):
    assert errors_of(with_(MINIMAL, limits=limits)) == errors


# --------------------------------------------------------------------------- all at once


def test_every_error_is_reported_at_once():
    document = {
        "currency": "USD",
        "hold_days": 400,
        "min_purchase": 19.99,
        "purchases": {"within_months": 0},
        "referrer": {"percent_bps": 10001, "cap": 0},
        "tiers": [{"from": 3, "referrer": {"fixed": 1, "percent_bps": 1}},
                  {"from": 3, "referrer": {"fixed": 1}, "colour": "red"}],
        "milestones": [{"at": 5, "bonus": 0}, {"at": 5, "bonus": 1}],
        "friend": {"fixed": 500, "cap": 10},
        "limits": {"month": {}, "lifetime": {"count": 0}, "week": {}},
        "bonus": 1,
    }
    errors = errors_of(document, currency="usd")
    assert errors == [
        "bonus: unknown key",
        "currency: must be 3 lowercase letters, like usd",
        "hold_days: must be between 0 and 365",
        "min_purchase: must be a whole number of minor units",
        "purchases.within_months: must be between 1 and 120",
        "referrer.percent_bps: must be between 1 and 10000",
        "referrer.cap: must be between 1 and 1000000000",
        "tiers[0].referrer: give either fixed or percent_bps, not both",
        "tiers[1].colour: unknown key",
        "tiers[1].from: must be greater than tiers[0].from",
        "milestones[0].bonus: must be between 1 and 1000000000",
        "milestones[1].at: must differ from milestones[0].at",
        "friend.cap: only goes with percent_bps, not with fixed",
        "limits.week: unknown key",
        "limits.month: give count, amount or both",
        "limits.lifetime.count: must be at least 1",
    ]


def test_policy_invalid_is_a_value_error_joining_its_errors():
    with pytest.raises(ValueError, match="policy: must be a JSON object") as caught:
        parse_policy([])
    assert isinstance(caught.value, PolicyInvalid)
    error = PolicyInvalid(["a: one", "b: two"])
    assert error.errors == ["a: one", "b: two"]
    assert str(error) == "a: one; b: two"


def test_parsing_does_not_change_the_document():
    document = copy.deepcopy(EXAMPLE)
    parse_policy(document)
    assert document == EXAMPLE


# --------------------------------------------------------------------------- round trip


amounts = st.integers(1, 10**9)
rules = st.one_of(
    st.builds(lambda fixed: {"fixed": fixed}, amounts),
    st.builds(lambda bps: {"percent_bps": bps}, st.integers(1, 10_000)),
    st.builds(lambda bps, cap: {"percent_bps": bps, "cap": cap}, st.integers(1, 10_000), amounts),
)
tier_lists = st.lists(st.integers(2, 1000), unique=True, max_size=20).flatmap(
    lambda starts: st.tuples(*[rules.map(lambda r, s=s: {"from": s, "referrer": r})
                               for s in sorted(starts)]).map(list)
)
milestone_lists = st.lists(
    st.builds(lambda at, bonus: {"at": at, "bonus": bonus}, st.integers(1, 10**6), amounts),
    max_size=50, unique_by=lambda m: m["at"],
)
limit_objects = st.fixed_dictionaries(
    {}, optional={"count": st.integers(1, 10**6), "amount": st.integers(1, 10**12)}
).filter(bool)
documents = st.fixed_dictionaries(
    {"currency": st.sampled_from(["usd", "eur", "jpy", "gbp", "xyz"])},
    optional={
        "hold_days": st.integers(0, 365),
        "min_purchase": st.integers(0, 10**12),
        "purchases": st.one_of(st.sampled_from(["first", "all"]),
                               st.builds(lambda n: {"within_months": n}, st.integers(1, 120))),
        "referrer": rules,
        "tiers": tier_lists,
        "milestones": milestone_lists,
        "friend": rules,
        "limits": st.fixed_dictionaries({}, optional={"month": limit_objects,
                                                      "lifetime": limit_objects}),
    },
).filter(lambda d: any(d.get(k) for k in ("referrer", "friend", "tiers", "milestones")))


@given(documents)
def test_round_trip_property(document):
    policy = parse_policy(document, currency=document["currency"])
    canonical = to_document(policy)
    assert parse_policy(canonical) == policy
    assert to_document(parse_policy(canonical)) == canonical
    assert json.loads(json.dumps(canonical)) == canonical
    # The canonical form only adds defaults (and drops empty lists and an empty "limits").
    for key, value in document.items():
        if value not in ([], {}):
            assert canonical[key] == value
