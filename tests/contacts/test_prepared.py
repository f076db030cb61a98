"""The prepared cursor: one per connection, handed from statement to statement, never shared by
two statements whose results are read at the same time."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction

from contacts.prepared import prepared_cursor

pytestmark = pytest.mark.django_db


def _raw(cursor):
    return cursor.cursor


def test_statements_one_after_another_share_the_connections_cursor():
    with prepared_cursor() as first:
        first.execute("SELECT %s::int", [1])
        assert first.fetchone() == (1,)
    with prepared_cursor() as second:
        second.execute("SELECT %s::int", [2])
        assert second.fetchone() == (2,)

    assert _raw(first) is _raw(second)


def test_a_statement_asked_while_anothers_rows_are_read_gets_a_cursor_of_its_own():
    seen = []
    with prepared_cursor() as outer:
        outer.execute("SELECT n FROM generate_series(1, %s) AS n", [3])
        for (n,) in outer:
            with prepared_cursor() as inner:
                inner.execute("SELECT %s::int * 10", [n])
                seen.append((n, inner.fetchone()[0]))
            assert _raw(inner) is not _raw(outer)

    assert seen == [(1, 10), (2, 20), (3, 30)]
    with prepared_cursor() as after:  # the kept one is free again
        after.execute("SELECT 1")
    assert _raw(after) is _raw(outer)


@pytest.mark.django_db(transaction=True)  # the connection is closed, so no test transaction around it
def test_a_new_connection_gets_a_new_cursor():
    with prepared_cursor() as before:
        before.execute("SELECT 1")
    connection.close()
    with prepared_cursor() as after:
        after.execute("SELECT %s::text", ["again"])
        assert after.fetchone() == ("again",)

    assert _raw(after) is not _raw(before)
    assert _raw(after).connection is connection.connection


def test_a_statement_that_failed_leaves_the_cursor_usable():
    with pytest.raises(DataError), transaction.atomic():
        with prepared_cursor() as cursor:
            cursor.execute("SELECT %s::int", ["not a number"])
    with prepared_cursor() as again:
        again.execute("SELECT %s::int", [7])
        assert again.fetchone() == (7,)
    assert _raw(again) is _raw(cursor)
