"""Savepoints that ride with the next statement, or are left out, for the backtest's replay.

The replay nests a savepoint for every unit of work it does (each harness step, each send, each
enrollment, each ingest, each end of a run), as production does: about half of its statements
were SAVEPOINT and RELEASE, each a round trip of its own. Inside `deferred_savepoints()` a
savepoint statement is held back and sent in front of the next statement, in the same round
trip (the same statements in the same order, so the same transaction); a savepoint released or
rolled back before anything ran inside it is never sent at all. A statement that cannot carry
others (a prepared one, an executemany) sends them just before it.

With `elide=True` no savepoint opened inside is sent at all. A savepoint is there to undo what
ran inside it, and a replay undoes nothing as long as every block succeeds: a block that ends
in a rollback with nothing run inside it still costs nothing, and the first that would have to
undo a statement raises `SavepointsNeeded` (as does every statement after it), for the caller to
roll back to a savepoint of its own, made before, and replay again with them sent. Either way
the same statements reach the same transaction, so the same report; in PostgreSQL a savepoint
is not free even when it rides along (each that writes takes a transaction id of its own, and
each end walks the transaction's state).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.db import connection, connections


class SavepointsNeeded(BaseException):
    """A savepoint left out (`elide=True`) was asked to undo what ran inside it. A BaseException:
    the harness fails a run on any Exception and goes on, and this must reach the caller."""


_SAVEPOINT_SQL = re.compile(r'^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) ("[\w]+"|[\w]+)$')


class Deferred:
    """The execute wrapper and the connection's savepoint methods' stand-in; counts the statements
    asked for and the round trips made."""

    def __init__(self, *, elide: bool = False) -> None:
        self.pending: list[tuple[str, str]] = []  # (verb, savepoint), in the order they were asked
        self.unsent: set[str] = set()  # savepoints undone before they were sent, not yet released
        self.elide = elide
        # With `elide`: the savepoints left out and still open, each with the count of statements
        # run when it was made; `needed` once one had to undo a statement.
        self.left_out: list[tuple[str, int]] = []
        self.ran = 0
        self.needed = False
        self.statements = 0
        self.round_trips = 0

    def __call__(
        self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        self.statements += 1
        found = _SAVEPOINT_SQL.match(sql) if params is None and not many and isinstance(sql, str) else None
        if found is not None and self._held(*found.groups()):
            return None
        if self.needed:
            raise SavepointsNeeded("a statement after a savepoint left out was needed")
        self.ran += 1
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

    def asked(self, verb: str, name: str) -> bool:
        """A savepoint statement asked for by the connection's own savepoint methods (which come
        here without building a cursor for it); False if it must be sent now after all."""
        self.statements += 1
        return self._held(verb, name)

    def _held(self, verb: str, name: str) -> bool:
        """Hold a savepoint statement back, or drop it as needless; False for one that must run
        now (a rollback to a savepoint already sent)."""
        if self.elide:
            return self._left_out(verb, name)
        created = ("SAVEPOINT", name)
        if verb == "SAVEPOINT":
            self.pending.append(created)
            return True
        if name in self.unsent:  # a savepoint never sent (Django releases one it rolled back)
            if verb == "RELEASE SAVEPOINT":
                self.unsent.discard(name)
            return True
        if created in self.pending:  # nothing ran since it was made: nothing to keep or undo
            at = self.pending.index(created)
            self.unsent.update(n for v, n in self.pending[at:] if v == "SAVEPOINT" and n != name)
            if verb != "RELEASE SAVEPOINT":
                self.unsent.add(name)
            del self.pending[at:]
            return True
        if verb == "RELEASE SAVEPOINT":
            self.pending.append((verb, name))
            return True
        return False

    def _left_out(self, verb: str, name: str) -> bool:
        """`elide`: open, release or roll back a savepoint never sent; False for one made before
        (sent, outside), which is sent as asked and ends every savepoint left out since."""
        if verb == "SAVEPOINT":
            self.left_out.append((name, self.ran))
            return True
        at = next((i for i, (n, _) in enumerate(self.left_out) if n == name), None)
        if at is None:
            self.left_out.clear()
            return False
        if verb == "ROLLBACK TO SAVEPOINT":
            if self.left_out[at][1] != self.ran:
                self.needed = True
                raise SavepointsNeeded(f"savepoint {name} left out had statements to undo")
            del self.left_out[at + 1 :]  # Django releases it next
            return True
        del self.left_out[at:]
        return True

    def flush(self) -> None:
        if self.pending:
            self.round_trips += 1
            prefix = "; ".join(f"{verb} {name}" for verb, name in self.pending)
            self.pending = []
            connection.connection.execute(prefix)


@contextlib.contextmanager
def deferred_savepoints(*, elide: bool = False) -> Iterator[Deferred]:
    """Inside a transaction: savepoint statements go with the next statement, or with `elide` are
    left out until one must undo something (module docstring)."""
    if not connection.in_atomic_block:
        raise RuntimeError("deferred savepoints live inside a transaction")
    deferred = Deferred(elide=elide)
    wrapper = connections[connection.alias]
    for method, verb in _SAVEPOINT_METHODS.items():
        setattr(wrapper, method, _asking(deferred, wrapper, verb, getattr(wrapper, method)))
    try:
        with connection.execute_wrapper(deferred):
            try:
                yield deferred
            finally:
                deferred.flush()
    finally:
        for method in _SAVEPOINT_METHODS:
            delattr(wrapper, method)  # the class's own again


# The connection's savepoint methods and the statements they send (BaseDatabaseWrapper's each
# build a cursor to execute theirs: a savepoint asked for is a cursor made for nothing, as the
# statement is held back).
_SAVEPOINT_METHODS = {
    "_savepoint": "SAVEPOINT",
    "_savepoint_commit": "RELEASE SAVEPOINT",
    "_savepoint_rollback": "ROLLBACK TO SAVEPOINT",
}


def _asking(
    deferred: Deferred, wrapper: Any, verb: str, original: Callable[[str], None]
) -> Callable[[str], None]:
    def savepoint_statement(sid: str) -> None:
        if not deferred.asked(verb, wrapper.ops.quote_name(sid)):
            deferred.statements -= 1  # counted again as it runs through the cursor
            original(sid)

    return savepoint_statement
