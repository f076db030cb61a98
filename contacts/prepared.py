"""A cursor whose statements are bound server-side and prepared once per connection.

Django's usual cursor interpolates parameters into the SQL text client-side: for a statement run
once per email with the message's HTML among its parameters, that is the text quoted in Python,
then parsed and planned again by PostgreSQL, every time. Prepared, the statement is planned once
per connection and the parameters travel apart from it. `DB_PREPARED_STATEMENTS=false` (a pooler
that cannot keep prepared statements) falls back to Django's cursor.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _PreparedStatementCursor(psycopg.Cursor):
    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugCursor(CursorDebugWrapper):
    """Django's query log (tests, DEBUG): a prepared execution leaves psycopg without the query
    text Django logs, so the statement is logged as written."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor() -> Any:
    """A cursor wrapped as Django wraps its own (errors translated, queries counted)."""
    if not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    # The wrapper itself, looked up once: each attribute read through the `connection` proxy looks
    # the wrapper up again in the context-local store, four of them for every prepared statement.
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    raw = _PreparedStatementCursor(wrapper.connection)
    return _PreparedDebugCursor(raw, wrapper) if wrapper.queries_logged else wrapper.make_cursor(raw)
