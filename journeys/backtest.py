"""Backtest a journey: what it would have done with the recorded events of a period.

The period's events (the journey's trigger, its `exit_on` events, the events it waits for or
reads), the consent ledger's changes and the ends of earlier runs are replayed in the order they
were received through the journey on the virtual-time harness (journeys.testing): the real
guards, send pipeline and step log, with the clock moved to each recorded moment. It all runs
in a schema of its own inside a transaction that is rolled back (journeys.backtest_data), with
mail handed to a backend that only counts it, the lifecycle announcer (destinations) silenced,
and the harness playing the engine; Celery and engine hand-offs happen only after a commit that
never comes. Nothing is sent and nothing outside the isolation is written.

An event only a history lookup reads (no trigger, exit or wait of the run's versions) needs no
ingest and no routing: it is stored set-based, as ingest would have stored it, before anything
could read it (`HistoryAside`); `history_in_bulk=False` ingests it one by one, with the same report.

Each version replays first with the savepoints its units of work would nest left out (a replay
undoes nothing while every unit succeeds); the first that would have to undo a statement stops
it, and the version is replayed again from the same inputs with them sent
(journeys.backtest_savepoints). The same statements reach the same transaction either way.

With a changed version (`against`) both replay the same seeded inputs, each in a savepoint of
its own, and the report adds the difference: the contacts whose emails would differ, the counts
per template, and examples side by side.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, connections, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.test import override_settings
from django.utils import timezone

from contacts.ingest import EventDraft, IngestResult, events_ingest
from contacts.lifecycle import install_lifecycle
from contacts.prepared import prepared_cursor
from emails.models import EmailLog
from emails.services import email_send
from journeys import services
from journeys.backtest_data import (
    HistoryAside,
    Inputs,
    Isolation,
    RecordedEvent,
    Share,
    Window,
    consent_apply,
    contacts_created,
    contacts_to_replay,
    inputs_seed,
    isolation_ahead,
    isolation_analyze,
    isolation_create,
    recorded_events,
    run_end_apply,
    timeline,
)
from journeys.backtest_savepoints import SavepointsNeeded, deferred_savepoints
from journeys.conditions import Condition
from journeys.definition import Journey
from journeys.journey_lint import journey_event_uses
from journeys.models import EnrollmentSkip, JourneyRun, RunStep
from journeys.registry import registry
from journeys.selectors import event_count
from journeys.testing import HarnessBackend, JourneyHarness, _Park
from journeys.versions import journey_version

EXAMPLES = 10
# Reasons the send-time policy gives a send it holds or drops (emails.policy).
POLICY_REASONS = ("quiet_hours", "frequency_capped")
SENT = EmailLog.Status.SENT
# The isolation's statistics are renewed after this many replayed events, then at each doubling.
ANALYZE_FIRST = 256
# Fewer contacts than this per worker are replayed by one: each worker builds an isolation of its own.
CONTACTS_PER_WORKER = 250
# A worker tells the progress bar about its events in steps of at least this many.
PROGRESS_STEP = 100


class RecordingEmailBackend(BaseEmailBackend):
    """Where the backtest's mail goes: counted, never sent."""

    sent = 0

    def send_messages(self, email_messages: Any) -> int:
        RecordingEmailBackend.sent += len(email_messages)
        return len(email_messages)


class _CountingSends(HarnessBackend):
    """The harness's backend, with a journey's send stopped short of the provider: the whole
    send pipeline runs (consent, suppress window, send-time policy, the log row), and a row it
    queues is recorded as sent at once, unrendered. `render=True` renders and hands it to the
    counting mail backend instead (slower; catches a template that would fail)."""

    def __init__(self, *, render: bool, before_history_read: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.render = render
        self.delivers_email = render  # journeys.send asks: without rendering, nothing is delivered
        self.before_history_read = before_history_read

    async def db(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        if self.before_history_read is not None and (
            fn is event_count or kwargs.get("kind") == RunStep.Kind.HISTORY  # ctx.history's, or a direct read
        ):
            self.before_history_read()
        if self.render:
            return fn(**kwargs)
        if fn is email_send:
            return _sent(email_send(**kwargs, deliver=False))
        if kwargs.get("kind") == RunStep.Kind.SEND and "compute" in kwargs:  # a send and its step
            compute = kwargs["compute"]
            kwargs["compute"] = lambda seq: _sent(compute(seq))
        return fn(**kwargs)

    async def wait_for_event(
        self,
        *,
        run_id: Any,
        seq: int,
        contact_id: Any,
        event: str,
        where: tuple[Condition, ...],
        deadline: datetime,
        timeout: Any,
        label: str,
        replay: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """The harness's wait without its read of the events already stored. That read only
        notes what was there when the wait began (HarnessBackend.wait_for_event: none of it can
        end the wait), for a run executed again from the top after a crash, a retry or a deploy;
        the replay executes each run once, so a wait's first call is its only one and the read
        is a statement for nothing. A second call (which the replay never makes) is refused
        rather than answered without it."""
        if replay is not None:
            return None
        key = (run_id, seq)
        if key in self.waits_began:
            raise RuntimeError(f"the backtest executed run {run_id} a second time")
        self.waits_began[key] = set()
        if timezone.now() >= deadline:
            return None
        return await _Park(
            deadline=deadline, run_id=run_id, label=label, event=event, contact_id=contact_id, where=where
        )


# Without rendering, a journey's send is recorded as sent as it is written: the provider's
# acceptance at the moment the row is queued, in the insert's own statement rather than in an
# UPDATE after it (its own round trip, and a second version of the row in a transaction that can
# prune none). Every queued row the replay inserts is a journey's send through `_CountingSends`
# (the journey is alone in the registry and no task runs); a held row released later is an
# UPDATE, and stays as the release leaves it.
_SENT_AS_WRITTEN_SQL = f"""
CREATE FUNCTION pg_temp.backtest_sent_as_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = '{EmailLog.Status.QUEUED}' THEN
        NEW.status := '{SENT}';
        NEW.sent_at := NEW.created_at;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sent_as_written BEFORE INSERT ON pg_temp.emails_emaillog
FOR EACH ROW EXECUTE FUNCTION pg_temp.backtest_sent_as_written()
"""


def _sends_sent_as_written() -> None:
    """In the isolation: a queued row is stored as sent (see _SENT_AS_WRITTEN_SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT_AS_WRITTEN_SQL)


def _sent(log: EmailLog) -> EmailLog:
    """A queued row as the isolation stored it: sent at once, as the provider's acceptance would
    (the clock stands still within a step: its moment is the row's)."""
    if log.status == EmailLog.Status.QUEUED:
        log.status, log.sent_at = SENT, log.created_at
    return log


@dataclass
class VersionReport:
    """What one version of the journey would have done."""

    label: str
    version: str
    enrolled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)  # status at the end of the period
    exits: dict[str, int] = field(default_factory=dict)
    waiting_at: dict[str, int] = field(default_factory=dict)  # live runs by label at the end
    failures: dict[str, int] = field(default_factory=dict)
    sends: dict[str, int] = field(default_factory=dict)
    sends_per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    not_sent: dict[str, int] = field(default_factory=dict)  # "status:reason"
    policy: dict[str, int] = field(default_factory=dict)
    waits: dict[str, dict[str, int]] = field(default_factory=dict)
    # user id -> [(template, when)] of the emails sent, for the difference (not in the JSON)
    sequences: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "enrolled": self.enrolled,
            "skipped": self.skipped,
            "runs": self.runs,
            "exits": self.exits,
            "waiting_at": self.waiting_at,
            "failures": self.failures,
            "sends": self.sends,
            "sends_per_day": self.sends_per_day,
            "not_sent": self.not_sent,
            "policy": self.policy,
            "waits": self.waits,
        }


@dataclass
class Difference:
    contacts: int = 0  # contacts whose emails differ
    other_emails: int = 0  # of them, those who would get other templates (or more, or fewer)
    only_timing: int = 0  # of them, those who would get the same templates at other moments
    templates: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "other_emails": self.other_emails,
            "only_timing": self.only_timing,
            "templates": self.templates,
            "examples": self.examples,
        }


@dataclass
class BacktestReport:
    journey_id: str
    since: datetime
    until: datetime
    contacts: int
    events: int
    consent_changes: int
    elapsed_seconds: float
    current: VersionReport
    changed: VersionReport | None = None
    difference: Difference | None = None
    # How the replay went (not what it found, so not in the JSON): the processes that replayed,
    # the statements the replay asked for and the round trips to PostgreSQL they took.
    workers: int = 1
    statements: int = 0
    round_trips: int = 0
    replayed_again: int = 0  # versions replayed again because a savepoint left out was needed

    def as_dict(self) -> dict[str, Any]:
        replays = 2 if self.changed else 1
        return {
            "journey_id": self.journey_id,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "contacts": self.contacts,
            "events": self.events,
            "consent_changes": self.consent_changes,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "events_per_second": round(self.events * replays / self.elapsed_seconds, 1)
            if self.elapsed_seconds
            else None,
            "current": self.current.as_dict(),
            "changed": self.changed.as_dict() if self.changed else None,
            "difference": self.difference.as_dict() if self.difference else None,
        }

    def as_text(self) -> str:
        rate = self.events * (2 if self.changed else 1) / self.elapsed_seconds if self.elapsed_seconds else 0
        lines = [
            f"{self.journey_id} {self.since:%Y-%m-%d %H:%M} → {self.until:%Y-%m-%d %H:%M} UTC: "
            f"{self.contacts} contacts, {self.events} events and {self.consent_changes} consent changes "
            f"replayed in {self.elapsed_seconds:.1f} s ({rate:.0f} events/s); nothing was sent"
        ]
        for report in (self.current, self.changed):
            if report is not None:
                lines += _version_text(report)
        if self.difference is not None and self.changed is not None:
            lines += _difference_text(self.difference)
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _version_text(report: VersionReport) -> list[str]:
    skipped = sum(report.skipped.values())
    lines = [
        f"{report.label} (version {report.version}):",
        f"  enrolled {report.enrolled}; skipped {skipped}"
        + (f": {_counts(report.skipped)}" if skipped else ""),
        f"  runs at the end: {_counts(report.runs)}",
    ]
    if report.exits:
        lines.append(f"  exits: {_counts(report.exits)}")
    if report.waiting_at:
        lines.append(f"  still waiting at: {_counts(report.waiting_at)}")
    if report.failures:
        lines.append(f"  failures: {_counts(report.failures)}")
    lines.append(f"  sends: {_counts(report.sends)}")
    if report.not_sent:
        lines.append(f"  not sent: {_counts(report.not_sent)}")
    if report.policy:
        lines.append(f"  send-time policy: {_counts(report.policy)}")
    for label, outcome in report.waits.items():
        lines.append(f"  wait {label}: {_counts(outcome)}")
    if report.sends_per_day:
        lines.append("  sends per day:")
        lines += [f"    {day}  {_counts(templates)}" for day, templates in report.sends_per_day.items()]
    return lines


def _difference_text(diff: Difference) -> list[str]:
    lines = ["difference (changed vs current):"]
    changed = {t: c for t, c in diff.templates.items() if c["current"] != c["changed"]}
    lines.append(
        "  sends per template: "
        + (
            ", ".join(
                f"{t} {c['current']} → {c['changed']} ({c['changed'] - c['current']:+d})"
                for t, c in changed.items()
            )
            or "the same"
        )
    )
    lines.append(
        f"  {diff.contacts} contacts would get their emails differently "
        f"({diff.other_emails} other emails, {diff.only_timing} the same emails at other times)"
    )
    for example in diff.examples:
        lines.append(f"  {example['user_id']}:")
        for side in ("current", "changed"):
            sends = ", ".join(f"{s['template']} {s['at'][:16]}" for s in example[side]) or "nothing"
            lines.append(f"    {side:<8} {sends}")
    return lines


def difference_between(current: VersionReport, changed: VersionReport) -> Difference:
    diff = Difference()
    templates = sorted(set(current.sends) | set(changed.sends))
    diff.templates = {
        t: {"current": current.sends.get(t, 0), "changed": changed.sends.get(t, 0)} for t in templates
    }
    for user_id in sorted(set(current.sequences) | set(changed.sequences)):
        before, after = current.sequences.get(user_id, []), changed.sequences.get(user_id, [])
        if before == after:
            continue
        diff.contacts += 1
        if [t for t, _ in before] == [t for t, _ in after]:
            diff.only_timing += 1
        else:
            diff.other_emails += 1
        if len(diff.examples) < EXAMPLES:
            diff.examples.append(
                {
                    "user_id": user_id,
                    "current": [{"template": t, "at": at} for t, at in before],
                    "changed": [{"template": t, "at": at} for t, at in after],
                }
            )
    return diff


# --- the replay --------------------------------------------------------------------------------


@contextlib.contextmanager
def _run_ends_as_read(names: set[str]) -> Iterator[None]:
    """What ends a run, less what nothing in the replay reads (services._transition).

    - A run that completes or fails is announced as the system event `journey.<status>`
      (services.run_end_announce): an ingest, a read of the run and a routing each. With the
      destinations silent and the journey alone in the registry (no task), only the journey
      itself could read that event: unless one of its names (`names`, from journey_event_uses)
      is the announced event, nothing ever does, and the replay stores none.
    - The journey map's edge to the run's end (journey_map.map_end) is not kept in the isolation
      (see isolation_create): its statement is not sent."""
    announce, map_end = services.run_end_announce, services.map_end

    def announce_if_read(*, run_id: Any, status: str) -> None:
        if f"journey.{status}" in names:
            announce(run_id=run_id, status=status)

    def map_end_not_kept(*, run_id: Any, status: str, reason: str = "") -> None:
        return None

    services.run_end_announce, services.map_end = announce_if_read, map_end_not_kept
    try:
        yield
    finally:
        services.run_end_announce, services.map_end = announce, map_end


# The fields the guarded status changes of a run set beside its status (services.run_complete,
# run_fail, run_exit, run_retry), plain values all.
_TRANSITION_FIELDS = frozenset({"ended_at", "waiting_until", "exit_reason", "error", "current_node"})
_ENDS = (JourneyRun.Status.COMPLETED, JourneyRun.Status.EXITED, JourneyRun.Status.FAILED)


@contextlib.contextmanager
def _transitions_plain() -> Iterator[None]:
    """services._transition with its conditional UPDATE written as one plain statement: the same
    statement, guard and end hooks, without the ORM building it for each run that completes or
    exits. A change of other fields goes through the original."""
    original = services._transition

    def transition(*, run_id: Any, to: str, allowed_from: tuple[str, ...], **fields: Any) -> int:
        if not fields.keys() <= _TRANSITION_FIELDS:
            return original(run_id=run_id, to=to, allowed_from=allowed_from, **fields)
        for source in allowed_from:
            if to not in JourneyRun.TRANSITIONS[source]:
                raise services.InvalidRunTransition(f"a run cannot go from {source} to {to}")
        names = sorted(fields)
        sets = ", ".join(["status = %s", "updated_at = %s", *(f"{name} = %s" for name in names)])
        params = [
            str(to),
            timezone.now(),
            *(fields[name] for name in names),
            run_id,
            [str(s) for s in allowed_from],
        ]
        with transaction.atomic():
            with prepared_cursor() as cursor:  # a handful of texts, each planned once
                cursor.execute(
                    f"UPDATE journeys_journeyrun SET {sets} WHERE id = %s AND status = ANY(%s)", params
                )
                changed = cursor.rowcount
            if changed and to in _ENDS:
                services.run_ended(run_id=run_id, status=to, reason=fields.get("exit_reason", ""))
        return changed

    services._transition = transition
    try:
        yield
    finally:
        services._transition = original


@contextlib.contextmanager
def _replay_world(
    journey: Journey,
    since: datetime,
    *,
    render: bool,
    names: set[str],
    before_wake: Callable[[], None] | None = None,
    before_history_read: Callable[[], None] | None = None,
) -> Iterator[JourneyHarness]:
    """The journey alone in the registry, mail counted, destinations silent, the harness as the
    engine and the clock at `since`."""
    previous = install_lifecycle(None)
    try:
        with (
            registry.isolated(journey),
            _run_ends_as_read(names),
            _transitions_plain(),
            services.unraced(),  # the isolation's tables are the session's own
            override_settings(EMAIL_BACKEND="journeys.backtest.RecordingEmailBackend", ENABLED_JOURNEYS="*"),
            JourneyHarness(
                start=since,
                backend=_CountingSends(render=render, before_history_read=before_history_read),
                before_wake=before_wake,
            ) as harness,
        ):
            yield harness
    finally:
        install_lifecycle(previous)


def _ingest(harness: JourneyHarness, batch: list[RecordedEvent], aside: HistoryAside) -> None:
    """One recorded batch (events received at the same moment), ingested as it was and routed
    with the stored rows in hand; the history kept aside until now is due first."""
    aside.all_due()
    results = events_ingest(
        drafts=[
            EventDraft(name=e.name, user_id=e.user_id, properties=e.properties, occurred_at=e.occurred_at)
            for e in batch
        ],
        source=batch[0].source,
        dispatch=False,
    )
    stored = [r for r in results if isinstance(r, IngestResult) and r.created]
    for result in stored:
        result.event.contact = result.contact
    if stored:
        harness.deliver(
            events=[r.event for r in stored],
            exited_run_ids=[run_id for r in stored for run_id in r.event.exited_run_ids],
        )


def _replay(
    *,
    journey: Journey,
    label: str,
    isolation: Isolation,
    inputs: Inputs,
    names: set[str],
    history_only: set[str],
    window: Window,
    progress: Callable[[int], None],
    render: bool,
) -> VersionReport:
    """The timeline, in order, through the harness. An event of a name in `history_only` (one
    nothing in the run reacts to: no trigger, exit or wait of either version reads it, only a
    history lookup does) is kept aside rather than ingested one by one: it is due from the next
    ingest, or from a wake after the moment it was received, and what is due is stored set-based
    just before a history lookup (journeys.selectors.event_count, the one reader of such a name)."""
    subject = replace(journey, enabled=True)  # the code is what is tested, whatever the Studio says
    aside = HistoryAside(isolation)
    with _replay_world(
        subject,
        window.since,
        render=render,
        names=names,
        before_wake=aside.due_before_now,
        before_history_read=aside.store,
    ) as harness:
        events = recorded_events(isolation=isolation, journey_id=journey.id, names=names, window=window)
        batch: list[RecordedEvent] = []
        replayed, analyze_at = 0, ANALYZE_FIRST
        for at, kind, item in timeline(events, inputs.consent_changes, inputs.run_ends):
            if batch and (
                kind != "event" or item.received_at != batch[0].received_at or item.source != batch[0].source
            ):
                _ingest(harness, batch, aside)
                progress(len(batch))
                replayed += len(batch)
                batch = []
                if replayed >= analyze_at:  # the replay's tables doubled: plans for their size
                    aside.all_due()
                    aside.store()
                    isolation_analyze(isolation)
                    analyze_at *= 2
            if kind == "event" and item.name in history_only:
                aside.keep(item)
                progress(1)
                replayed += 1
                continue
            now = timezone.now()
            if at > now:
                harness.advance(at - now)
            if kind == "event":
                batch.append(item)
            elif kind == "consent":
                contact_id, email, change, category, _, detail = item
                consent_apply(
                    contact_id=contact_id, email=email, kind=change, category=category, at=at, detail=detail
                )
            else:
                run_id, status, reason = item
                run_end_apply(run_id=run_id, status=status, reason=reason, at=at)
        if batch:
            _ingest(harness, batch, aside)
            progress(len(batch))
        harness.advance(window.until - timezone.now())
        aside.all_due()
        aside.store()
    return _collect(journey=subject, label=label, window=window)


def _collect(*, journey: Journey, label: str, window: Window) -> VersionReport:
    report = VersionReport(label=label, version=journey_version(journey))
    runs = JourneyRun.objects.filter(journey_id=journey.id, entered_at__gte=window.since)
    statuses: Counter[str] = Counter()
    exits: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for row in (
        runs.values("status", "exit_reason", "current_node", "error").annotate(n=Count("id")).order_by()
    ):
        statuses[row["status"]] += row["n"]
        if row["status"] == JourneyRun.Status.EXITED:
            exits[row["exit_reason"]] += row["n"]
        elif row["status"] in JourneyRun.LIVE_STATUSES:
            waiting[row["current_node"] or "-"] += row["n"]
        elif row["status"] == JourneyRun.Status.FAILED:
            failures[(row["error"].splitlines() or ["?"])[0][:200]] += row["n"]
    report.enrolled = sum(statuses.values())
    report.runs, report.exits = _ordered(statuses), _ordered(exits)
    report.waiting_at, report.failures = _ordered(waiting), _ordered(failures)
    skips = EnrollmentSkip.objects.filter(journey_id=journey.id, created_at__gte=window.since)
    report.skipped = _ordered(
        Counter({r["reason"]: r["n"] for r in skips.values("reason").annotate(n=Count("id"))})
    )
    emails = EmailLog.objects.filter(run__in=runs)
    sends: Counter[str] = Counter()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    not_sent: Counter[str] = Counter()
    policy: Counter[str] = Counter()
    rows = emails.values("template", "status", "status_reason", day=TruncDate("created_at", tzinfo=UTC))
    for row in rows.annotate(n=Count("id")).order_by("day", "template"):
        reason = row["status_reason"] or ""
        if row["status"] == SENT:
            sends[row["template"]] += row["n"]
            per_day[row["day"].isoformat()][row["template"]] += row["n"]
        else:
            not_sent[f"{row['status']}:{reason}" if reason else row["status"]] += row["n"]
        for name in POLICY_REASONS:
            if reason.startswith(name):
                policy[name] += row["n"]
    report.sends, report.not_sent, report.policy = _ordered(sends), _ordered(not_sent), _ordered(policy)
    report.sends_per_day = {day: dict(sorted(c.items())) for day, c in sorted(per_day.items())}
    waits: dict[str, Counter[str]] = defaultdict(Counter)
    steps = RunStep.objects.filter(run__in=runs, kind=RunStep.Kind.WAIT)
    for row in steps.values("label", "result__timed_out").annotate(n=Count("id")).order_by("label"):
        outcome = {True: "timed_out", False: "received", None: "unresolved"}[row["result__timed_out"]]
        waits[row["label"]][outcome] += row["n"]
    report.waits = {label: dict(sorted(c.items())) for label, c in sorted(waits.items())}
    sequences: dict[str, list[tuple[str, str]]] = defaultdict(list)
    sent = emails.filter(status=SENT).values_list(
        "run__contact__user_id", "template", "created_at", "run__entered_at", "idempotency_key"
    )
    # Sends of one moment in the order their runs made them (a run's key ends in its step's
    # position), never by their random ids: the same replay gives the same sequence.
    for user_id, template, at, _, _ in sorted(sent, key=lambda r: (r[2], r[3], _position(r[4]), r[4])):
        sequences[user_id].append((template, at.astimezone(UTC).isoformat()))
    report.sequences = dict(sequences)
    return report


def _ordered(counts: Counter[str]) -> dict[str, int]:
    """Most first, ties by name: the same order however the counts were gathered."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _merged(reports: list[VersionReport]) -> VersionReport:
    """One version's report from the reports of disjoint shares of its contacts."""
    first = reports[0]
    merged = VersionReport(label=first.label, version=first.version)
    counted = ("skipped", "runs", "exits", "waiting_at", "failures", "sends", "not_sent", "policy")
    for name in counted:
        total: Counter[str] = Counter()
        for report in reports:
            total.update(getattr(report, name))
        setattr(merged, name, _ordered(total))
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    waits: dict[str, Counter[str]] = defaultdict(Counter)
    for report in reports:
        merged.enrolled += report.enrolled
        for day, templates in report.sends_per_day.items():
            per_day[day].update(templates)
        for label, outcomes in report.waits.items():
            waits[label].update(outcomes)
        merged.sequences.update(report.sequences)
    merged.sends_per_day = {day: dict(sorted(c.items())) for day, c in sorted(per_day.items())}
    merged.waits = {label: dict(sorted(c.items())) for label, c in sorted(waits.items())}
    return merged


def _position(key: str) -> int:
    tail = key.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


@dataclass
class _ShareOutcome:
    """What replaying one share of the contacts (or all of them) gave."""

    contacts: int
    events: int
    consent_changes: int
    reports: list[VersionReport]
    contacts_created: int = 0  # contacts the replay ingested events for without having seeded them
    rendered: int = 0
    statements: int = 0  # those the replay asked for (savepoints included) ...
    round_trips: int = 0  # ... and the round trips they took
    replayed_again: int = 0  # versions replayed again with their savepoints sent


def _replay_share(
    *,
    journey: Journey,
    versions: list[tuple[str, Journey]],
    names: set[str],
    history_only: set[str],
    window: Window,
    limit: int | None,
    share: Share | None,
    progress: Callable[[int], None],
    on_total: Callable[[int], None] | None,
    render: bool,
) -> _ShareOutcome:
    """Seed an isolation with the contacts (of `share`, or all) and replay every version on it,
    each in a savepoint of its own; all of it rolled back."""
    rendered_before = RecordingEmailBackend.sent
    reports: list[VersionReport] = []
    created = statements = round_trips = again = 0
    with isolation_ahead() as ahead, transaction.atomic():
        isolation = isolation_create(ahead)
        if not render:
            _sends_sent_as_written()
        inputs = inputs_seed(
            isolation=isolation,
            journey_id=journey.id,
            trigger=journey.trigger.event,
            names=names,
            window=window,
            limit=limit,
            share=share,
        )
        isolation_analyze(isolation)
        if on_total is not None:
            on_total(inputs.events * len(versions))
        for label, version in versions:
            replayed = _replay_version(
                journey=version,
                label=label,
                isolation=isolation,
                inputs=inputs,
                names=names,
                history_only=history_only,
                window=window,
                progress=progress,
                render=render,
                share=share,
            )
            reports.append(replayed.report)
            created += replayed.contacts_created
            statements += replayed.statements
            round_trips += replayed.round_trips
            again += replayed.again
        transaction.set_rollback(True)
    return _ShareOutcome(
        contacts=inputs.contacts,
        events=inputs.events,
        consent_changes=len(inputs.consent_changes),
        reports=reports,
        contacts_created=created,
        rendered=RecordingEmailBackend.sent - rendered_before,
        statements=statements,
        round_trips=round_trips,
        replayed_again=again,
    )


@dataclass
class _VersionReplayed:
    report: VersionReport
    contacts_created: int
    statements: int
    round_trips: int
    again: bool  # replayed a second time, with the savepoints sent


def _replay_version(
    *, isolation: Isolation, share: Share | None, progress: Callable[[int], None], **replay: Any
) -> _VersionReplayed:
    """One version replayed from the seeded inputs in a savepoint of its own, rolled back: first
    with the savepoints inside it left out, and if one had to undo something, again with them
    sent (journeys.backtest_savepoints), its events taken back from the progress bar first."""
    statements = round_trips = 0
    for elide in (True, False):
        told, rendered_before = 0, RecordingEmailBackend.sent

        def progress_told(n: int) -> None:
            nonlocal told
            told += n
            progress(n)

        with contextlib.suppress(SavepointsNeeded):
            with transaction.atomic(), deferred_savepoints(elide=elide) as deferred:
                report = _replay(isolation=isolation, progress=progress_told, **replay)
                created = contacts_created(isolation) if share is not None else 0
                transaction.set_rollback(True)  # each version from the same inputs
        statements += deferred.statements
        round_trips += deferred.round_trips
        if not deferred.needed:
            return _VersionReplayed(report, created, statements, round_trips, again=not elide)
        progress(-told)
        RecordingEmailBackend.sent = rendered_before
    raise AssertionError("a replay with its savepoints sent needs none of them again")


def _worker_count(workers: int | None, *, journey: Journey, window: Window, limit: int | None) -> int:
    """How many processes replay: `workers` if given, else one per core with enough contacts
    each. Always one inside a transaction: what it wrote is visible to its own connection only."""
    if connection.in_atomic_block:
        return 1
    if workers is not None:
        return max(workers, 1)
    cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    contacts = contacts_to_replay(
        journey_id=journey.id, trigger=journey.trigger.event, window=window, limit=limit
    )
    return max(1, min(cores, contacts // CONTACTS_PER_WORKER))


def _replay_in_workers(
    workers: int,
    progress: Callable[[int], None],
    on_total: Callable[[int], None] | None,
    **replay: Any,
) -> list[_ShareOutcome]:
    """Each share of the contacts replayed by a forked process of its own, on a connection and in
    an isolation of its own (the contacts of one share never meet another's: their replays are
    independent once their inputs are seeded); the parent relays their progress and gathers
    their outcomes."""
    from multiprocessing import Pipe
    from multiprocessing.connection import wait

    # os.fork, not multiprocessing's Process: a Process child runs the after-fork hooks libraries
    # register, and kombu's closes the Celery connections it inherited; a Redis channel left
    # waiting in BRPOP is closed by reading a reply that never comes, so the child hung there.
    # The workers never use Celery: they leave every inherited socket alone and end with
    # os._exit, running none of the parent's exit handlers.
    connections.close_all()  # each worker opens its own; none inherits this one's socket
    readers, children = {}, []
    for index in range(workers):
        reader, writer = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                reader.close()
                _own_connections()
                _worker(writer, Share(index=index, of=workers), **replay)
                status = 0
            finally:
                os._exit(status)
        writer.close()
        readers[reader] = index
        children.append(pid)
    outcomes: dict[int, _ShareOutcome] = {}
    totals: dict[int, int] = {}
    early: list[int] = []  # progress heard before every worker told its total
    failure = None
    try:
        while readers:
            for reader in wait(list(readers)):
                index = readers[reader]
                try:
                    kind, value = reader.recv()
                except EOFError:
                    failure = failure or f"backtest worker {index} ended without a report"
                    del readers[reader]
                    continue
                if kind == "total":
                    totals[index] = value
                    if len(totals) == workers:
                        if on_total is not None:
                            on_total(sum(totals.values()))
                        for n in early:
                            progress(n)
                        early.clear()
                elif kind == "progress":
                    (progress(value) if len(totals) == workers else early.append(value))
                elif kind == "done":
                    outcomes[index] = value
                    del readers[reader]
                else:
                    failure = failure or value
                    del readers[reader]
    finally:
        for pid in children:
            os.waitpid(pid, 0)
    if failure is not None:
        raise RuntimeError(f"the backtest's replay failed in a worker:\n{failure}")
    return [outcomes[index] for index in range(workers)]


# The parent's connection wrappers a worker inherited: held, never closed or collected (closing
# one would end the parent's session on the socket they share); os._exit frees nothing.
_inherited: list[Any] = []


def _own_connections() -> None:
    """Give a forked worker connection wrappers of its own, whatever the parent left open.

    Django keeps its wrappers per thread, or per context while an event loop runs in the thread
    (a session-wide Playwright browser keeps one running in the test process). The parent's
    `close_all` closes only the wrappers of the store it sees; a child sees no running loop (the
    loop belongs to the parent's pid) and would look in the other store, where a connection the
    parent opened before the loop started may still be open. Two workers sharing that socket
    read each other's replies. So every wrapper the child can see is set aside and replaced."""
    for alias in connections:
        _inherited.append(connections[alias])
        connections[alias] = connections.create_connection(alias)


def _worker(writer: Any, share: Share, **replay: Any) -> None:
    """A forked worker: replay one share, send the outcome to the parent, close the connection."""
    pending = [0]

    def progress(n: int) -> None:
        pending[0] += n
        if pending[0] >= PROGRESS_STEP:
            writer.send(("progress", pending[0]))
            pending[0] = 0

    try:
        outcome = _replay_share(
            share=share, progress=progress, on_total=lambda n: writer.send(("total", n)), **replay
        )
        if pending[0]:
            writer.send(("progress", pending[0]))
        writer.send(("done", outcome))
    except BaseException:  # the parent reports it; the worker must end either way
        writer.send(("error", traceback.format_exc()))
    finally:
        connections.close_all()
        writer.close()


def journey_backtest(
    *,
    journey: Journey,
    since: datetime,
    until: datetime,
    against: Journey | None = None,
    limit_contacts: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    render: bool = False,
    history_in_bulk: bool = True,
    workers: int | None = None,
) -> BacktestReport:
    """Replay the period through `journey` (and `against`, if given) in isolation; see the module
    docstring. `on_total` hears how many events will be replayed, `progress` each batch done.
    `history_in_bulk=False` ingests every event one by one, the history-only ones too (the same
    report, slower). `workers` processes replay disjoint shares of the contacts (by default one
    per core, when there are enough contacts; always one inside a transaction), each in an
    isolation of its own, and their reports are added up: a journey whose runs ingest events for
    other contacts (which a share may not hold) is replayed again by one process."""
    started = time.perf_counter()
    window = Window(since=since, until=until)
    uses: dict[str, set[str]] = defaultdict(set)
    for version in (journey, against) if against else (journey,):
        for name, how in journey_event_uses(version).items():
            uses[name] |= how
    names = set(uses)
    history_only = {name for name, how in uses.items() if how == {"history"}} if history_in_bulk else set()
    versions = [("current", journey)] + ([("changed", against)] if against else [])
    replay: dict[str, Any] = {
        "journey": journey,
        "versions": versions,
        "names": names,
        "history_only": history_only,
        "window": window,
        "limit": limit_contacts,
        "render": render,
    }
    progress = progress or (lambda n: None)
    count = _worker_count(workers, journey=journey, window=window, limit=limit_contacts)
    outcomes = _replay_in_workers(count, progress, on_total, **replay) if count > 1 else []
    if any(o.contacts_created for o in outcomes):  # the shares were not independent after all
        outcomes = []
    RecordingEmailBackend.sent += sum(o.rendered for o in outcomes)  # counted in the workers
    if not outcomes:
        outcomes = [_replay_share(share=None, progress=progress, on_total=on_total, **replay)]
    current = _merged([o.reports[0] for o in outcomes])
    changed = _merged([o.reports[1] for o in outcomes]) if against else None
    return BacktestReport(
        journey_id=journey.id,
        since=since,
        until=until,
        contacts=sum(o.contacts for o in outcomes),
        events=sum(o.events for o in outcomes),
        consent_changes=sum(o.consent_changes for o in outcomes),
        elapsed_seconds=time.perf_counter() - started,
        current=current,
        changed=changed,
        difference=difference_between(current, changed) if changed else None,
        workers=len(outcomes),
        statements=sum(o.statements for o in outcomes),
        round_trips=sum(o.round_trips for o in outcomes),
        replayed_again=sum(o.replayed_again for o in outcomes),
    )
