from __future__ import annotations

import pytest

from journeys.conditions import Condition, ConditionError, all_match, parse_where, prop


@pytest.mark.parametrize(
    ("condition", "properties", "expected"),
    [
        (prop("plan").eq("pro"), {"plan": "pro"}, True),
        (prop("plan").eq("pro"), {"plan": "free"}, False),
        (prop("plan").neq("pro"), {"plan": "free"}, True),
        (prop("plan").neq("pro"), {}, True),
        (prop("seats").gt(10), {"seats": 11}, True),
        (prop("seats").gt(10), {"seats": 10}, False),
        (prop("seats").gte(10), {"seats": 10}, True),
        (prop("seats").lt(10), {"seats": 9.5}, True),
        (prop("seats").lte(10), {"seats": 11}, False),
        (prop("seats").gt(10), {"seats": "11"}, False),
        (prop("seats").gt(10), {"seats": True}, False),
        (prop("coupon").exists(), {"coupon": "X"}, True),
        (prop("coupon").exists(), {"coupon": None}, False),
        (prop("coupon").not_exists(), {}, True),
        (prop("coupon").not_exists(), {"coupon": "X"}, False),
        (prop("url").contains("pricing"), {"url": "/pricing/team"}, True),
        (prop("url").contains("pricing"), {"url": "/docs"}, False),
        (prop("tags").contains("vip"), {"tags": ["vip", "beta"]}, True),
        (prop("company.size").gte(100), {"company": {"size": 250}}, True),
        (prop("plan").eq("pro"), {}, False),
    ],
)
def test_each_operator(condition, properties, expected):
    assert condition.matches(properties) is expected


def test_plain_data_and_the_builder_mean_the_same():
    as_data = parse_where(
        [{"type": "property", "source": "context", "property": "plan", "operator": "eq", "value": "pro"}]
    )
    assert as_data == parse_where(prop("plan").eq("pro")) == parse_where(lambda b: b.prop("plan").eq("pro"))


def test_all_conditions_must_hold():
    conditions = parse_where([prop("plan").eq("pro"), prop("seats").gte(5)])
    assert all_match(conditions, {"plan": "pro", "seats": 5})
    assert not all_match(conditions, {"plan": "pro", "seats": 4})


def test_an_unknown_operator_is_refused_with_the_valid_ones():
    with pytest.raises(ConditionError, match="use one of eq, neq"):
        Condition("plan", "equals", "pro")


def test_a_condition_without_an_operator_is_refused():
    with pytest.raises(ConditionError, match="'property' and 'operator'"):
        parse_where([{"property": "plan"}])
