"""A property condition means in SQL what it means in Python and CEL: the journeys' table of cases
runs through the compiled SQL on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from audiences.conditions import property_sql
from tests.journeys.condition_cases import CASES


@pytest.mark.django_db
def test_every_condition_case_agrees_between_python_and_sql():
    disagree = []
    with connection.cursor() as cursor:
        for condition, properties, expected in CASES:
            sql, params = property_sql(condition, "t.p")
            cursor.execute(f"SELECT {sql} FROM (SELECT %s::jsonb AS p) t", [*params, json.dumps(properties)])
            got = cursor.fetchone()[0]
            assert condition.matches(properties) == expected
            if got is not expected:
                disagree.append((condition.as_data(), properties, expected, got))
    assert disagree == []
