from __future__ import annotations

import uuid

import pytest

from journeys.conditions import Condition, ConditionError, all_match, parse_where, prop
from journeys.runtime.backend import wait_expression
from journeys.testing import cel_matches
from tests.journeys.condition_cases import CASES


@pytest.mark.parametrize(("condition", "properties", "expected"), CASES)
def test_each_case_means_the_same_in_python_and_in_the_engines_cel(condition, properties, expected):
    assert condition.matches(properties) is expected
    assert cel_matches(condition.to_cel(), properties) is expected


def test_a_wait_expression_is_the_contact_filter_and_every_condition():
    contact_id = uuid.uuid4()
    where = (prop("vip").eq(True), prop("seats").gte(10))
    expression = wait_expression(contact_id=contact_id, where=where)
    assert cel_matches(expression, {"vip": True, "seats": 10}, contact_id=str(contact_id))
    assert not cel_matches(expression, {"vip": 1, "seats": 10}, contact_id=str(contact_id))
    assert not cel_matches(expression, {"vip": True, "seats": 10}, contact_id=str(uuid.uuid4()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: prop("tags").eq(["a"]),
        lambda: prop("meta").eq({"a": 1}),
        lambda: prop("seats").gt(True),
        lambda: prop("seats").gt(None),
        lambda: prop("seats").lt(float("nan")),
        lambda: prop("tags").contains(["a"]),
    ],
)
def test_a_value_a_condition_cannot_compare_is_refused_when_the_journey_is_defined(make):
    with pytest.raises(ConditionError):
        make()


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
