"""The tables a journey start writes carry no index another one makes redundant.

Every run, step and email row written updates each of its table's indexes (the status and node
changes of a start are not HOT updates), so an index no query needs costs every start. Two kinds
are redundant: one whose columns lead another index (that one serves its lookups), and a LIKE
index (varchar_pattern_ops) on a column only ever matched by equality.
"""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

START_PATH_TABLES = ("journeys_journeyrun", "journeys_runstep", "emails_emaillog", "emails_sentmessage")

_INDEXES_SQL = """
SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL,
       array(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_subscripts(x.indkey, 1) AS k),
       pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relname = ANY(%s)
"""


def _indexes() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_INDEXES_SQL, [list(START_PATH_TABLES)])
        return cursor.fetchall()


def test_no_index_on_the_start_path_is_led_by_another_indexes_columns():
    indexes = _indexes()
    redundant = [
        f"{name} ({', '.join(columns)}) on {table}: {other} leads with the same columns"
        for table, name, unique, partial, columns, _ in indexes
        if not unique and not partial
        for other_table, other, _, other_partial, other_columns, _ in indexes
        if other_table == table
        and other != name
        and not other_partial
        and len(other_columns) > len(columns)
        and list(other_columns[: len(columns)]) == list(columns)
    ]
    assert redundant == []


def test_no_like_index_on_the_start_path():
    assert [name for _, name, *_, definition in _indexes() if "pattern_ops" in definition] == []
