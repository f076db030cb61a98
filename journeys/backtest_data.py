"""The backtest's isolation and its recorded inputs.

Isolation: inside the caller's transaction (which the backtest rolls back), the session's
temporary schema gets an empty copy of every table of the database (`CREATE TEMP TABLE ...
(LIKE ... INCLUDING ALL)`: columns, defaults, identity columns, unique and partial indexes),
first on the search path (`SET LOCAL search_path TO pg_temp, source`). Every read and write of
the replay lands there, in the process's local buffers and without WAL; the recorded data is
read from the source schema by name. Nothing of the replay is visible to any other session, no
row of the real tables is written or locked, and the rollback drops the tables with everything
in them.

Inputs, read set-based from the source schema:
- the contacts: those with a trigger event of the journey received in the period (the first
  `limit`, by their first trigger), copied with their consent as it stood at `since` (the
  current state with the ledger's later changes undone, newest first);
- their earlier events of the names the journey reads (history reads see the past), and the
  journey's runs that entered before `since` (entry limits count them; one still live at
  `since` stays live until the moment it really ended);
- the suppressions of their addresses, as they stood at `since`;
- the timeline of the period, in the order it was received: the events of those names (keyset
  pages of `PAGE` rows), the consent ledger's changes, and the ends of the runs live at `since`.
Events the journey's own runs produced (a `ctx.trigger`, `journey.completed`) are left out: the
replay produces its own.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from contacts.categories import UnknownCategory, category_get
from contacts.models import ConsentChange, Contact, Suppression
from contacts.prepared import prepared_cursor
from journeys.models import JourneyRun

PAGE = 5000
Kind = ConsentChange.Kind
CONTACTS_TABLE = "backtest_contacts"  # the replayed contacts, in the isolation's schema
_CONSENT_KINDS = (
    Kind.UNSUBSCRIBED,
    Kind.RESUBSCRIBED,
    Kind.CATEGORY_OPTED_OUT,
    Kind.CATEGORY_OPTED_IN,
    Kind.CONFIRMED,
    Kind.SUPPRESSED,
    Kind.UNSUPPRESSED,
)


@dataclass(frozen=True)
class Isolation:
    schema: str  # where the isolation is: the session's temporary schema
    source: str  # where the recorded data is
    tables: tuple[str, ...] = ()  # its tables


def isolation_create(ahead: Isolation | None = None) -> Isolation:
    """An empty copy of every table in the session's temporary schema, which shadows the source
    until the caller's transaction ends. Must run inside that transaction. With `ahead` (from
    `isolation_ahead`) the tables are already there and are only put first on the search path."""
    if not connection.in_atomic_block:
        raise RuntimeError("the backtest's isolation must live in a transaction that is rolled back")
    isolation = ahead or _tables_create()
    with connection.cursor() as cursor:
        # Named, not implied: a statement prepared before on this connection is planned again.
        # Planned once: the replay runs each statement thousands of times with parameters alike,
        # and one whose generic plan looks dearer on paper (a store of kept history by an array of
        # ids, its length unknown) would otherwise be planned again at every run.
        cursor.execute(
            f'SET LOCAL search_path TO pg_temp, "{isolation.source}"; '
            "SET LOCAL plan_cache_mode = force_generic_plan"
        )
    return isolation


@contextlib.contextmanager
def isolation_ahead() -> Iterator[Isolation | None]:
    """Outside a transaction: the isolation's tables created beforehand, in a transaction of their
    own that commits them empty, and dropped at the end (a session that ends drops them too). The
    replay's transaction then creates nothing: in PostgreSQL every savepoint's end walks what its
    transaction created (the files to drop on a rollback and, past a few dozen relations, the
    whole relation cache), and the replay ends a savepoint for each unit of work it does. Inside a
    transaction (a test's) there is none of its own to commit in: None, and `isolation_create`
    builds them there as before."""
    if connection.in_atomic_block:
        yield None
        return
    with transaction.atomic():
        isolation = _tables_create()
    try:
        yield isolation
    finally:
        # A connection the replay lost keeps nothing (its session is gone); the replay's own error
        # is the one to see.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            tables = ", ".join(f'"{isolation.schema}"."{t}"' for t in isolation.tables)
            cursor.execute(f"DROP TABLE IF EXISTS {tables}; DROP FUNCTION IF EXISTS {_ROW_DROPPED}()")


# The isolation's one function beside its tables: a trigger's, which drops the row it is given.
_ROW_DROPPED = "pg_temp.backtest_row_dropped"


def _tables_create() -> Isolation:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        source = cursor.fetchone()[0]
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [source])
        tables = [row[0] for row in cursor.fetchall()]
        _temp_buffers(cursor)
        statements = [f'CREATE TEMP TABLE "{t}" (LIKE "{source}"."{t}" INCLUDING ALL)' for t in tables]
        statements.append(
            f"CREATE TEMP TABLE {CONTACTS_TABLE} (contact_id uuid PRIMARY KEY, first_at timestamptz)"
        )
        # The journey map's edge counters (the Studio's, not the report's) are not kept: every
        # step would add a version of its edge's row that a transaction never committed cannot
        # prune, and each later step of any run would walk them all.
        statements.append(
            f"CREATE FUNCTION {_ROW_DROPPED}() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$"
        )
        statements.append(
            "CREATE TRIGGER map_edges_not_kept BEFORE INSERT ON pg_temp.journeys_journeymapedge "
            f"FOR EACH ROW EXECUTE FUNCTION {_ROW_DROPPED}()"
        )
        cursor.execute(";\n".join(statements))
        cursor.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
        schema = cursor.fetchone()[0]
        cursor.execute(_UNUSED_INDEXES_SQL, {"temp": schema, "source": source, "names": list(UNUSED_INDEXES)})
        dropped = [row[0] for row in cursor.fetchall()]
        if dropped:
            cursor.execute(";\n".join(f'DROP INDEX "{schema}"."{name}"' for name in dropped))
    return Isolation(schema=schema, source=source, tables=(*tables, CONTACTS_TABLE))


# Local buffers for the isolation's temporary tables (each process's own; allocated as used).
TEMP_BUFFERS = "256MB"


def _temp_buffers(cursor: Any) -> None:
    """Room for the isolation in local buffers; the setting can change only before the session's
    first use of a temporary table (a connection that used one keeps what it has)."""
    try:
        with transaction.atomic():
            cursor.execute(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'")
    except DatabaseError:
        pass


# The source's indexes the isolation leaves out: the Studio's lists and filters, the sweeps' and
# the outbox's queues, the segments' and webhooks' lookups, and search by pattern. The replay reads
# none of them, and each costs every write it would have to follow: in a transaction never
# committed no entry can be pruned, so a status index keeps one for every status a row ever had
# (and the planner, told that few runs are active, walked them all to find one run by its id); a
# run with sixteen indexes made each of its statements open and lock more relations than a
# portal's lock cache holds, and releasing it walked every lock of the session (the isolation's
# hundreds). Unique indexes (constraints the replay must meet) and the lookups by contact, run,
# key and trigger stay, as does any index not named here: a new one costs speed, never results.
UNUSED_INDEXES = frozenset(
    {
        # journeys_journeyrun: the Studio's lists, filters and map; the sweeps by status
        "run_status_idx",
        "run_journey_status_idx",
        "run_journey_node_idx",
        "run_journey_version_idx",
        "run_journey_map_live_idx",
        "studio_run_entered_idx",
        "studio_run_journey_entered_idx",
        "studio_run_waiting_until_idx",
        "studio_run_journey_ended_idx",
        # journeys_enrollmentskip: the Studio's
        "skip_journey_idx",
        "studio_skip_created_idx",
        # emails_emaillog: the Studio's, the delivery sweep's, the webhooks' (the held index stays:
        # the harness releases held sends through it)
        "email_status_idx",
        "email_created_idx",
        "email_pending_idx",
        "emails_emaillog_provider_message_id_a7fb58e4",
        # contacts_event: the outbox's queues, the segments' and the Studio's lists by time
        "event_outbox_pending_idx",
        "event_dispatched_idx",
        "event_name_time_idx",
        "event_time_idx",
        # contacts_contact: the Studio's list and its search by pattern (equality has the unique)
        "contact_created_idx",
        "contacts_contact_user_id_cff1a837_like",
        "contacts_contact_email_b008e8f9_like",
    }
)

# The isolation's copies of the named source indexes: a copy has a name of its own, so it is
# matched by its table and its definition past the name.
_UNUSED_INDEXES_SQL = """
WITH source AS (
    SELECT t.relname AS tablename, regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', '') AS body
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = %(source)s AND i.relname = ANY(%(names)s) AND NOT x.indisunique
)
SELECT i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN source s ON s.tablename = t.relname
    AND s.body = regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', '')
WHERE n.nspname = %(temp)s AND NOT x.indisunique
ORDER BY 1
"""


def isolation_analyze(isolation: Isolation) -> None:
    """Statistics for the isolation's tables, as they stand. Tables created in a transaction that
    is never committed are out of autovacuum's sight, and without statistics the planner takes a
    growing table for a tiny one (a scan of every run of the journey for each enrollment, of
    every contact for each ingest): the replay analyzes after seeding and as the tables double."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [isolation.schema])
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(";\n".join(f'ANALYZE "{isolation.schema}"."{t}"' for t in tables))


# --- what the journey's own runs produced, left out of the replay --------------------------------

_NOT_OWN = """
NOT (e.source = 'system' AND e.properties->>'journey_id' = %(journey)s)
AND NOT (e.source = 'journey' AND EXISTS (
    SELECT 1 FROM "{src}".journeys_journeyrun r
    WHERE r.journey_id = %(journey)s
      AND r.id = CASE WHEN split_part(e.idempotency_key, ':', 2) ~ '^[0-9a-f-]{{36}}$'
                      THEN split_part(e.idempotency_key, ':', 2)::uuid END))
"""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


@dataclass
class Inputs:
    """What was seeded, and the timeline's size."""

    contacts: int
    events: int
    consent_changes: list[tuple[datetime, int, str, Any]] = field(default_factory=list)
    run_ends: list[tuple[datetime, int, str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Share:
    """One of `of` disjoint shares of the replayed contacts, by a hash of the address (or of the
    contact, without one): contacts that share an address (its suppression, its consent) are
    always in the same share."""

    index: int
    of: int


_SHARE_SQL = "abs(hashtext(lower(coalesce(nullif(c.email, ''), c.id::text)))::bigint) %% %(shares)s"


def contacts_to_replay(*, journey_id: str, trigger: str, window: Window, limit: int | None) -> int:
    """How many contacts a backtest of the period would replay (read from the current schema)."""
    params = {"journey": journey_id, "trigger": trigger, "since": window.since, "until": window.until}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        not_own = _NOT_OWN.format(src=cursor.fetchone()[0])
        cursor.execute(
            f"""
            SELECT count(DISTINCT e.contact_id) FROM contacts_event e
            WHERE e.name = %(trigger)s AND e.received_at >= %(since)s AND e.received_at < %(until)s
              AND {not_own}
            """,
            params,
        )
        found = cursor.fetchone()[0]
    return found if limit is None else min(found, limit)


def inputs_seed(
    *,
    isolation: Isolation,
    journey_id: str,
    trigger: str,
    names: set[str],
    window: Window,
    limit: int | None,
    share: Share | None = None,
) -> Inputs:
    """Fill the isolation with the contacts (those of `share`, if given: the first `limit` are
    chosen before the share is taken), their past and the journey's earlier runs (see the module
    docstring); returns the timeline's consent changes and run ends, and how many events it
    holds."""
    src = isolation.source
    params: dict[str, Any] = {
        "journey": journey_id,
        "trigger": trigger,
        "names": sorted(names),
        "since": window.since,
        "until": window.until,
        "limit": limit,
    }
    not_own = _NOT_OWN.format(src=src)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {CONTACTS_TABLE} (contact_id, first_at)
            SELECT e.contact_id, min(e.received_at) FROM "{src}".contacts_event e
            WHERE e.name = %(trigger)s AND e.received_at >= %(since)s AND e.received_at < %(until)s
              AND {not_own}
            GROUP BY e.contact_id ORDER BY min(e.received_at), e.contact_id
            LIMIT %(limit)s
            """,
            params,
        )
        contacts = cursor.rowcount
        if share is not None:
            cursor.execute(
                f"""
                DELETE FROM {CONTACTS_TABLE} b USING "{src}".contacts_contact c
                WHERE c.id = b.contact_id AND {_SHARE_SQL} <> %(index)s
                """,
                {"shares": share.of, "index": share.index},
            )
            contacts -= cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO contacts_contact SELECT c.* FROM "{src}".contacts_contact c
                JOIN {CONTACTS_TABLE} b ON b.contact_id = c.id;
            INSERT INTO contacts_event SELECT e.* FROM "{src}".contacts_event e
                JOIN {CONTACTS_TABLE} b ON b.contact_id = e.contact_id
                WHERE e.name = ANY(%(names)s::text[]) AND e.received_at < %(since)s AND {not_own};
            INSERT INTO journeys_journeyrun SELECT r.* FROM "{src}".journeys_journeyrun r
                JOIN {CONTACTS_TABLE} b ON b.contact_id = r.contact_id
                WHERE r.journey_id = %(journey)s AND r.entered_at < %(since)s;
            INSERT INTO contacts_suppression SELECT s.* FROM "{src}".contacts_suppression s
                WHERE lower(s.email) IN (SELECT lower(c.email) FROM contacts_contact c WHERE c.email <> '');
            """,
            params,
        )
        cursor.execute(
            f"""
            SELECT count(*) FROM "{src}".contacts_event e JOIN {CONTACTS_TABLE} b ON b.contact_id = e.contact_id
            WHERE e.name = ANY(%(names)s::text[]) AND e.received_at >= %(since)s AND e.received_at < %(until)s
              AND {not_own}
            """,
            params,
        )
        events = cursor.fetchone()[0]
    return Inputs(
        contacts=contacts,
        events=events,
        consent_changes=_consent_at_since(src=src, window=window),
        run_ends=_runs_live_at_since(window=window),
    )


def _runs_live_at_since(*, window: Window) -> list[tuple[datetime, int, str, Any]]:
    """Earlier runs still live at `since` stay live in the replay until they really ended."""
    ends = []
    runs = JourneyRun.objects.filter(entered_at__lt=window.since).exclude(ended_at__lt=window.since)
    for n, (run_id, status, ended_at, reason) in enumerate(
        runs.values_list("id", "status", "ended_at", "exit_reason")
    ):
        if ended_at is not None and ended_at < window.until:
            ends.append((ended_at, n, "run_end", (run_id, status, reason)))
    runs.update(status=JourneyRun.Status.WAITING, ended_at=None)
    return ends


def _consent_at_since(*, src: str, window: Window) -> list[tuple[datetime, int, str, Any]]:
    """Undo the ledger's changes since `since`, newest first, on the seeded contacts and
    suppressions; returns those of the period, oldest first, for the timeline."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT k.id, k.contact_id, lower(k.email), k.kind, k.category, k.occurred_at, k.detail
            FROM "{src}".contacts_consentchange k
            WHERE k.occurred_at >= %(since)s AND k.kind = ANY(%(kinds)s::text[])
              AND (k.contact_id IN (SELECT contact_id FROM {CONTACTS_TABLE})
                   OR (k.contact_id IS NULL AND lower(k.email) IN
                       (SELECT lower(c.email) FROM contacts_contact c WHERE c.email <> '')))
            ORDER BY k.occurred_at DESC, k.id DESC
            """,
            {"since": window.since, "kinds": list(_CONSENT_KINDS)},
        )
        rows = cursor.fetchall()
    for _, contact_id, email, kind, category, at, detail in rows:
        consent_apply(
            contact_id=contact_id, email=email, kind=kind, category=category, at=at, detail=detail, undo=True
        )
    period = [r for r in reversed(rows) if r[5] < window.until]
    return [(r[5], r[0], "consent", r[1:]) for r in period]


def consent_apply(
    *, contact_id: Any, email: str, kind: str, category: str, at: datetime, detail: Any, undo: bool = False
) -> None:
    """Apply one ledger change to the isolation's contact (or address), or undo it.

    A category change follows `contact_category_set`: a default-on category records an opt-out,
    a default-off one an opt-in."""
    if kind in (Kind.SUPPRESSED, Kind.UNSUPPRESSED):
        if (kind == Kind.SUPPRESSED) != undo:
            if isinstance(detail, str):
                detail = json.loads(detail)
            reason = (detail or {}).get("reason") or Suppression.Reason.MANUAL
            Suppression.objects.get_or_create(email=email, defaults={"reason": reason})
        else:
            Suppression.objects.filter(email__iexact=email).delete()
        return
    contact = Contact.objects.filter(pk=contact_id).first() if contact_id else None
    if contact is None:
        return
    if kind in (Kind.UNSUBSCRIBED, Kind.RESUBSCRIBED):
        unsubscribed = (kind == Kind.UNSUBSCRIBED) != undo
        contact.unsubscribed_at = at if unsubscribed else None
        contact.save(update_fields=["unsubscribed_at"])
    elif kind == Kind.CONFIRMED:
        contact.confirmed_at = None if undo else at
        contact.save(update_fields=["confirmed_at"])
    else:
        try:
            default_on = category_get(category).default_opt_in
        except UnknownCategory:
            return
        subscribed = (kind == Kind.CATEGORY_OPTED_IN) != undo
        outs = [c for c in contact.category_opt_outs if c != category]
        ins = [c for c in contact.category_opt_ins if c != category]
        if default_on and not subscribed:
            outs.append(category)
        if not default_on and subscribed:
            ins.append(category)
        contact.category_opt_outs, contact.category_opt_ins = outs, ins
        contact.save(update_fields=["category_opt_outs", "category_opt_ins"])


def contacts_created(isolation: Isolation) -> int:
    """Contacts the replay created (an event ingested for someone it did not seed: a journey's
    `ctx.trigger` for another contact)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FROM "{isolation.schema}".contacts_contact c
            WHERE NOT EXISTS (SELECT 1 FROM {CONTACTS_TABLE} b WHERE b.contact_id = c.id)
            """
        )
        return cursor.fetchone()[0]


def run_end_apply(*, run_id: Any, status: str, reason: str, at: datetime) -> None:
    """An earlier run, live at `since`, ends when it really ended."""
    JourneyRun.objects.filter(pk=run_id).update(status=status, exit_reason=reason, ended_at=at)


@dataclass(frozen=True)
class RecordedEvent:
    id: uuid.UUID
    name: str
    user_id: str
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    source: str


def recorded_events(
    *, isolation: Isolation, journey_id: str, names: set[str], window: Window
) -> Iterator[RecordedEvent]:
    """The period's events of the replayed contacts, in the order they were received, read in
    keyset pages of PAGE rows."""
    src = isolation.source
    sql = f"""
        SELECT e.id, e.name, c.user_id, e.properties, e.occurred_at, e.received_at, e.source
        FROM "{src}".contacts_event e
        JOIN {CONTACTS_TABLE} b ON b.contact_id = e.contact_id
        JOIN "{src}".contacts_contact c ON c.id = e.contact_id
        WHERE e.name = ANY(%(names)s::text[]) AND e.received_at >= %(since)s AND e.received_at < %(until)s
          AND (e.received_at, e.id) > (%(after_at)s, %(after_id)s)
          AND {_NOT_OWN.format(src=src)}
        ORDER BY e.received_at, e.id
        LIMIT {PAGE}
    """
    params: dict[str, Any] = {
        "journey": journey_id,
        "names": sorted(names),
        "since": window.since,
        "until": window.until,
        "after_at": window.since,
        "after_id": uuid.UUID(int=0),
    }
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for event_id, name, user_id, properties, occurred_at, received_at, source in rows:
            if isinstance(properties, str):  # jsonb arrives undecoded through Django's connection
                properties = json.loads(properties)
            yield RecordedEvent(event_id, name, user_id, properties or {}, occurred_at, received_at, source)
        if len(rows) < PAGE:
            return
        params["after_at"], params["after_id"] = rows[-1][5], rows[-1][0]


class HistoryAside:
    """Recorded events kept aside for a while, then stored set-based as ingest would have stored
    each (a new id, no idempotency key, pending, received when it was received): what a journey
    only looks up in history need not go through ingest and routing one by one. An event is due
    once the replay has passed the moment it was received (`all_due`, `due_before_now`), and what
    is due is stored only when something is about to read it (`store`: a history read, the
    statistics, the end of the replay)."""

    def __init__(self, isolation: Isolation) -> None:
        self.source = isolation.source
        self.kept: list[tuple[datetime, uuid.UUID]] = []  # in the order they were received
        self.due = 0  # how many of `kept`, from the first, are due

    def keep(self, event: RecordedEvent) -> None:
        self.kept.append((event.received_at, event.id))

    def all_due(self) -> None:
        self.due = len(self.kept)

    def due_before_now(self) -> None:
        """Those received before the clock's moment (one received at it comes after what wakes
        then, as in the timeline)."""
        now = timezone.now()
        upto = next((i for i, (at, _) in enumerate(self.kept) if at >= now), len(self.kept))
        self.due = max(self.due, upto)

    def store(self) -> None:
        """Store what is due."""
        upto, self.due = self.due, 0
        if not upto:
            return
        ids = [event_id for _, event_id in self.kept[:upto]]
        del self.kept[:upto]
        with prepared_cursor() as cursor:  # planned once per replay, not at every store
            cursor.execute(
                f"""
                INSERT INTO contacts_event (id, contact_id, name, properties, occurred_at, received_at,
                    idempotency_key, source, dispatch_state, dispatch_attempts, exited_run_ids)
                SELECT gen_random_uuid(), e.contact_id, e.name, e.properties, e.occurred_at, e.received_at,
                    NULL, e.source, 'pending', 0, '{{}}'
                FROM "{self.source}".contacts_event e WHERE e.id = ANY(%s::uuid[])
                ORDER BY e.received_at, e.id
                """,
                [ids],
            )


def timeline(
    events: Iterator[RecordedEvent], *others: list[tuple[datetime, int, str, Any]]
) -> Iterator[tuple[datetime, str, Any]]:
    """Events, consent changes and run ends merged in time order; at one moment, state changes
    (consent, run ends) come before the events."""
    streams = [((e.received_at, 1, 0, "event", e) for e in events)]
    streams += [((at, 0, n, kind, item) for at, n, kind, item in other) for other in others]
    for at, _, _, kind, item in heapq.merge(*streams, key=lambda row: row[:3]):
        yield at, kind, item
