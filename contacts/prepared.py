"""A cursor whose statements are bound server-side and prepared once per connection.

Django's usual cursor interpolates parameters into the SQL text client-side: for a statement run
once per email with the message's HTML among its parameters, that is the text quoted in Python,
then parsed and planned again by PostgreSQL, every time. Prepared, the statement is planned once
per connection and the parameters travel apart from it. `DB_PREPARED_STATEMENTS=false` (a pooler
that cannot keep prepared statements) falls back to Django's cursor.

One cursor serves each connection's prepared statements in turn. A psycopg cursor is built with
its own adapters map and transformer, which hold each other in a reference cycle: made afresh for
every statement of a send or a step, they cost the process the building and then the garbage
collector's walks over them, together about a tenth of a journey's CPU.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _PreparedStatementCursor(psycopg.Cursor):
    """Prepared executions; `close` hands the cursor back to its connection's next caller.

    `in_use` is set from `prepared_cursor` to `close`, so a statement asked while another's rows
    are still being read (a loop over one result that runs another statement) gets a cursor of its
    own, and each result stays whole.
    """

    in_use = False

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ):
        return super().execute(query, params, prepare=True, binary=binary)

    def close(self) -> None:
        self.in_use = False


class _PreparedDebugCursor(CursorDebugWrapper):
    """Django's query log (tests, DEBUG): a prepared execution leaves psycopg without the query
    text Django logs, so the statement is logged as written."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def _raw_cursor(wrapper: Any) -> _PreparedStatementCursor:
    """The connection's free prepared cursor, or a new one (kept if the connection has none)."""
    raw_connection = wrapper.connection
    kept = getattr(wrapper, "_prepared_cursor", None)
    if kept is not None and kept.connection is raw_connection and not kept.in_use:
        kept.in_use = True
        return kept
    raw = _PreparedStatementCursor(raw_connection)
    raw.in_use = True
    if kept is None or kept.connection is not raw_connection:  # none yet, or a closed connection's
        wrapper._prepared_cursor = raw
    return raw


def prepared_cursor() -> Any:
    """A cursor wrapped as Django wraps its own (errors translated, queries counted)."""
    if not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    # The wrapper itself, looked up once: each attribute read through the `connection` proxy looks
    # the wrapper up again in the context-local store, four of them for every prepared statement.
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    raw = _raw_cursor(wrapper)
    return _PreparedDebugCursor(raw, wrapper) if wrapper.queries_logged else wrapper.make_cursor(raw)
