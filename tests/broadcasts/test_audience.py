"""A saved filter selects in SQL exactly the contacts the journeys' Python matcher would."""

from __future__ import annotations

import json

import pytest

from broadcasts.audience import ConditionError, audience_count, condition_sql, filter_parse
from contacts.models import Contact
from journeys.conditions import prop
from tests.journeys.condition_cases import CASES

EXTRA = [
    (prop("a.b").eq(1), {"a": {"b": 1}}, True),
    (prop("a.b").eq(1), {"a.b": 2, "a": {"b": 1}}, False),  # a literal dotted key wins
    (prop("tags").contains("vip"), {"tags": ["vip", "beta"]}, True),
    (prop("tags").contains("vip"), {"tags": "very vip"}, True),
    (prop("tags").contains(1), {"tags": [1.0]}, True),
    (prop("tags").contains(1), {"tags": ["1"]}, False),
    (prop("name").gt("Z"), {"name": "a"}, True),  # code point order, not the locale's
]


@pytest.mark.django_db
def test_every_condition_case_selects_what_the_python_matcher_says():
    from django.db import connection

    cases = [*CASES, *EXTRA]
    wrong = []
    with connection.cursor() as cursor:
        for condition, properties, expected in cases:
            assert condition.matches(properties) is expected, (condition, properties)
            sql, params = condition_sql(condition)
            cursor.execute(
                f"SELECT {sql} FROM (SELECT %s::jsonb AS properties) c", [*params, json.dumps(properties)]
            )
            if cursor.fetchone()[0] is not expected:
                wrong.append((condition, properties, expected))
    assert wrong == []


@pytest.mark.django_db
def test_the_audience_count_is_the_contacts_the_filter_matches_erased_ones_never():
    from django.utils import timezone

    Contact.objects.create(user_id="a", email="a@example.com", properties={"plan": "pro"})
    Contact.objects.create(user_id="b", email="b@example.com", properties={"plan": "free"})
    Contact.objects.create(
        user_id="c", email="c@example.com", properties={"plan": "pro"}, erased_at=timezone.now()
    )
    assert audience_count(conditions=[{"property": "plan", "operator": "eq", "value": "pro"}]) == 1
    assert audience_count(conditions=[]) == 2


def test_a_filter_that_is_not_a_list_of_conditions_is_refused_with_the_reason():
    with pytest.raises(ConditionError, match="unknown operator 'like'"):
        filter_parse([{"property": "plan", "operator": "like", "value": "p"}])
    with pytest.raises(ConditionError, match="a filter is a list"):
        filter_parse({"property": "plan"})
