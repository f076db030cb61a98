"""Savepoints that ride with the next statement, for the backtest's replay.

The replay nests a savepoint for every unit of work it does (each harness step, each send, each
enrollment, each ingest, each end of a run), as production does: about half of its statements
were SAVEPOINT and RELEASE, each a round trip of its own. Inside `deferred_savepoints()` a
savepoint statement is held back and sent in front of the next statement, in the same round
trip (the same statements in the same order, so the same transaction); a savepoint released or
rolled back before anything ran inside it is never sent at all. A statement that cannot carry
others (a prepared one, an executemany) sends them just before it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.db import connection

_SAVEPOINT_SQL = re.compile(r'^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) ("[\w]+"|[\w]+)$')


class Deferred:
    """The execute wrapper; counts the statements asked for and the round trips made."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []  # (verb, savepoint), in the order they were asked
        self.unsent: set[str] = set()  # savepoints undone before they were sent, not yet released
        self.statements = 0
        self.round_trips = 0

    def __call__(
        self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        self.statements += 1
        found = _SAVEPOINT_SQL.match(sql) if params is None and not many and isinstance(sql, str) else None
        if found is not None:
            verb, name = found.groups()
            created = ("SAVEPOINT", name)
            if verb == "SAVEPOINT":
                self.pending.append(created)
                return None
            if name in self.unsent:  # a savepoint never sent (Django releases one it rolled back)
                if verb == "RELEASE SAVEPOINT":
                    self.unsent.discard(name)
                return None
            if created in self.pending:  # nothing ran since it was made: nothing to keep or undo
                at = self.pending.index(created)
                self.unsent.update(n for v, n in self.pending[at:] if v == "SAVEPOINT" and n != name)
                if verb != "RELEASE SAVEPOINT":
                    self.unsent.add(name)
                del self.pending[at:]
                return None
            if verb == "RELEASE SAVEPOINT":
                self.pending.append((verb, name))
                return None
        self.round_trips += 1
        if not self.pending:
            return execute(sql, params, many, context)
        prefix = "; ".join(f"{verb} {name}" for verb, name in self.pending)
        held, self.pending = len(self.pending), []
        cursor = context["cursor"].cursor
        if many or not isinstance(cursor, psycopg.ClientCursor):
            self.round_trips += 1
            context["connection"].connection.execute(prefix)
            return execute(sql, params, many, context)
        result = execute(f"{prefix}; {sql}", params, many, context)
        for _ in range(held):  # the statement's own result is the last one
            cursor.nextset()
        return result

    def flush(self) -> None:
        if self.pending:
            self.round_trips += 1
            prefix = "; ".join(f"{verb} {name}" for verb, name in self.pending)
            self.pending = []
            connection.connection.execute(prefix)


@contextlib.contextmanager
def deferred_savepoints() -> Iterator[Deferred]:
    """Inside a transaction: savepoint statements go with the next statement (module docstring)."""
    if not connection.in_atomic_block:
        raise RuntimeError("deferred savepoints live inside a transaction")
    deferred = Deferred()
    with connection.execute_wrapper(deferred):
        try:
            yield deferred
        finally:
            deferred.flush()
