"""A broadcast's audience as SQL: a saved filter (conditions over contact properties) or a segment.

A saved filter is written in the journeys' condition language (`journeys.conditions`) and means
here what it means there: `condition_sql` translates each operator to a jsonb expression over
`contacts_contact.properties` with the same type-strict rules (a missing and a null property are
alike; numbers compare with numbers and strings with strings, in code point order; `contains` is a
substring or a member test; `a.b` walks nested objects and a literal key "a.b" wins). A table of
cases checks the SQL against the Python matcher (tests/broadcasts/test_audience.py).

Recipients are written with one INSERT … SELECT, never through Python.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.db import connection

from journeys.conditions import ORDERINGS, Condition, ConditionError, parse_where

__all__ = ["ConditionError", "audience_count", "condition_sql", "filter_parse", "recipients_materialise"]

_SQL_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
assert set(_SQL_ORDER) == set(ORDERINGS)


def filter_parse(conditions: Any) -> list[dict[str, Any]]:
    """Validate a saved filter (a list of conditions as data) and return it normalised."""
    if conditions is None:
        return []
    if not isinstance(conditions, list):
        raise ConditionError("a filter is a list of conditions: [{property, operator, value}]")
    return [condition.as_data() for condition in parse_where(conditions)]


def _value_sql(path: str) -> tuple[str, list[Any]]:
    """The jsonb value at `path` in the contact's properties (NULL when missing)."""
    parts = path.split(".")
    if len(parts) == 1:
        return "(c.properties -> %s)", [path]
    return (
        "(CASE WHEN c.properties ? %s THEN c.properties -> %s ELSE c.properties #> %s::text[] END)",
        [path, path, parts],
    )


def condition_sql(condition: Condition) -> tuple[str, list[Any]]:
    """One condition as a boolean SQL expression over the contact row `c` (never NULL)."""
    value, params = _value_sql(condition.property)
    present = f"coalesce(jsonb_typeof({value}) <> 'null', false)"
    present_params = list(params)
    op, literal = condition.operator, condition.value
    if op == "exists" or (op == "neq" and literal is None):
        return present, present_params
    if op == "not_exists" or (op == "eq" and literal is None):
        return f"NOT {present}", present_params
    literal_json = json.dumps(literal)
    # jsonb equality is type-strict ("1" is not 1, true is not 1) and numeric across 1 and 1.0.
    same = f"coalesce({value} = %s::jsonb, false)"
    if op == "eq":
        return same, [*params, literal_json]
    if op == "neq":
        return f"NOT {same}", [*params, literal_json]
    if op == "contains":
        in_list = f"(jsonb_typeof({value}) = 'array' AND {value} @> jsonb_build_array(%s::jsonb))"
        if isinstance(literal, str):
            in_string = f"(jsonb_typeof({value}) = 'string' AND strpos({value} #>> '{{}}', %s) > 0)"
            return (
                f"coalesce({in_string} OR {in_list}, false)",
                [*params, *params, literal, *params, *params, literal_json],
            )
        return f"coalesce({in_list}, false)", [*params, *params, literal_json]
    symbol = _SQL_ORDER[op]
    if isinstance(literal, str):
        return (
            f"coalesce(jsonb_typeof({value}) = 'string' AND ({value} #>> '{{}}') COLLATE \"C\" {symbol} %s, false)",
            [*params, *params, literal],
        )
    return (
        f"coalesce(jsonb_typeof({value}) = 'number' AND ({value} #>> '{{}}')::float8 {symbol} %s, false)",
        [*params, *params, float(literal)],
    )


def filter_sql(conditions: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """Every condition of a saved filter, ANDed (TRUE for none)."""
    parts, params = [], []
    for condition in parse_where(conditions):
        sql, values = condition_sql(condition)
        parts.append(sql)
        params.extend(values)
    return (" AND ".join(parts) or "TRUE"), params


def _audience_sql(*, segment_id: str, conditions: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """SELECT c.id FROM contacts_contact c WHERE … for the audience (erased contacts never)."""
    if segment_id:
        from broadcasts.segments import segment_members_sql

        members, params = segment_members_sql(segment_id)
        return (
            f"SELECT c.id FROM contacts_contact c WHERE c.erased_at IS NULL AND c.id IN ({members})",
            params,
        )
    where, params = filter_sql(conditions)
    return f"SELECT c.id FROM contacts_contact c WHERE c.erased_at IS NULL AND {where}", params


def audience_count(*, segment_id: str = "", conditions: list[dict[str, Any]] | None = None) -> int:
    """How many contacts the audience has now (the Studio's preview)."""
    sql, params = _audience_sql(segment_id=segment_id, conditions=conditions or [])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) audience", params)
        return int(cursor.fetchone()[0])


def recipients_materialise(*, broadcast_id: UUID, segment_id: str, conditions: list[dict[str, Any]]) -> int:
    """Write the audience as the broadcast's recipients (pending) in one INSERT … SELECT; returns
    how many were written. Idempotent: a second call adds only contacts not there yet."""
    sql, params = _audience_sql(segment_id=segment_id, conditions=conditions)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO broadcasts_broadcastrecipient (broadcast_id, contact_id, state, outcome, reason)
            SELECT %s, audience.id, 'pending', '', '' FROM ({sql}) audience
            ON CONFLICT (broadcast_id, contact_id) DO NOTHING
            """,
            [broadcast_id, *params],
        )
        return cursor.rowcount
