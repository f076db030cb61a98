"""What a deploy does to parked runs: every live run's step log replayed through the code as it is now.

Method: for each active or waiting run, the journey function as the code now defines it runs
again from the top, exactly as the engine replays a run after an eviction or a restart, with the
run's recorded step log as its answers (the same `JourneyContext`, so the same positional check
that makes the engine refuse a non-deterministic replay). The replay stops where the run stands:
at the wait or sleep it is parked in, or, for an active run, at the first position it has not
recorded. Nothing is computed, sent or triggered at a new position, and the whole check runs in a
transaction that is rolled back.

Each run gets one verdict:
- `ok`: the code takes the recorded path to where the run stands;
- `label_gone` (breaks): the run is parked at (or last checkpointed) a label the code no longer
  has at that position: the engine would wake it for the old wait while the code reads the new;
- `nondeterministic` (breaks): a recorded position is now a different kind of step; the engine
  would refuse the replay and fail the run;
- `fails` (breaks): the replay raises;
- `journey_gone` (breaks): no journey with the run's id is defined any more;
- `new_path`: the replay is accepted but goes another way: a recorded send, history read or
  trigger has another label now, or the function ends (completes or exits) before the recorded
  steps run out.

A run that enrolled under a version the code keeps (a module's `KEPT_VERSIONS`) is replayed on
that version, as the worker will run it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from journeys.context import (
    JourneyContext,
    JourneyExit,
    JourneyUser,
    NonDeterministicJourney,
    current_context,
)
from journeys.definition import Journey
from journeys.journey_lint import Finding, journey_lint
from journeys.models import JourneyRun, RunStep
from journeys.registry import registry
from journeys.versions import journey_version

OK = "ok"
LABEL_GONE = "label_gone"
NONDETERMINISTIC = "nondeterministic"
FAILS = "fails"
JOURNEY_GONE = "journey_gone"
NEW_PATH = "new_path"
BREAKS = (LABEL_GONE, NONDETERMINISTIC, FAILS, JOURNEY_GONE)
OUTCOMES = (LABEL_GONE, NONDETERMINISTIC, FAILS, JOURNEY_GONE, NEW_PATH, OK)
_PARKING = (RunStep.Kind.SLEEP, RunStep.Kind.WAIT, RunStep.Kind.CHECKPOINT)
EXAMPLES = 5  # runs listed per outcome in the text report


@dataclass(frozen=True)
class RunVerdict:
    run_id: str
    user_id: str
    status: str
    current_node: str
    version: str
    outcome: str
    seq: int | None = None
    detail: str = ""


@dataclass
class JourneyReport:
    journey_id: str
    version: str  # the code's version now ("" when the journey is gone)
    verdicts: list[RunVerdict] = field(default_factory=list)
    lint: list[Finding] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # kept earlier version -> live runs on it

    def count(self, outcome: str) -> int:
        return sum(1 for v in self.verdicts if v.outcome == outcome)

    @property
    def breaking(self) -> list[RunVerdict]:
        return [v for v in self.verdicts if v.outcome in BREAKS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "journey_id": self.journey_id,
            "version": self.version,
            "live_runs": len(self.verdicts),
            "older_versions": sum(1 for v in self.verdicts if v.version and v.version != self.version),
            "counts": {outcome: self.count(outcome) for outcome in OUTCOMES},
            "runs": [asdict(v) for v in self.verdicts if v.outcome != OK],
            "kept_versions": self.kept,
            "lint": [asdict(f) for f in self.lint],
        }


@dataclass
class CheckReport:
    journeys: list[JourneyReport]
    checked_at: datetime

    @property
    def breaking(self) -> list[RunVerdict]:
        return [v for j in self.journeys for v in j.breaking]

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "breaking_runs": len(self.breaking),
            "lint_findings": sum(len(j.lint) for j in self.journeys),
            "journeys": [j.as_dict() for j in self.journeys],
        }

    def summary(self) -> str:
        """One line for a log: what would break, per journey."""
        live = sum(len(j.verdicts) for j in self.journeys)
        broken = [f"{j.journey_id} {len(j.breaking)}" for j in self.journeys if j.breaking]
        lint = sum(len(j.lint) for j in self.journeys)
        head = f"journeys_check: {live} live runs, {len(self.breaking)} would break"
        return head + (f" ({', '.join(broken)})" if broken else "") + f"; {lint} lint findings"

    def as_text(self) -> str:
        lines: list[str] = []
        for report in self.journeys:
            counts = ", ".join(f"{o} {report.count(o)}" for o in OUTCOMES if report.count(o))
            lines.append(
                f"{report.journey_id} (version {report.version or 'gone'}): "
                f"{len(report.verdicts)} live runs" + (f": {counts}" if counts else "")
            )
            for version, live in report.kept.items():
                note = f"{live} live runs finish on it" if live else "no live run left on it: it can go"
                lines.append(f"  kept version {version}: {note}")
            for outcome in OUTCOMES[:-1]:
                shown = [v for v in report.verdicts if v.outcome == outcome]
                for verdict in shown[:EXAMPLES]:
                    mark = "BREAKS" if outcome in BREAKS else "note"
                    lines.append(
                        f"  {mark} {outcome}: run {verdict.run_id} ({verdict.user_id}, at "
                        f"{verdict.current_node or '-'}, version {verdict.version or '?'}): {verdict.detail}"
                    )
                if len(shown) > EXAMPLES:
                    lines.append(f"  ... and {len(shown) - EXAMPLES} more {outcome}")
            for finding in report.lint:
                where = f" (line {finding.line})" if finding.line else ""
                lines.append(f"  lint {finding.severity} {finding.code}{where}: {finding.message}")
        lines.append(self.summary())
        return "\n".join(lines)


class _Stop(BaseException):
    """Ends a replay where the run stands. A BaseException, so a journey's own `except Exception`
    cannot swallow it."""

    def __init__(self, where: str, seq: int) -> None:
        super().__init__(where)
        self.where = where
        self.seq = seq


class _ReplayBackend:
    """Answers the recorded durable waits; where the run is parked, the replay stops."""

    def __init__(self, recorded: dict[int, RunStep]) -> None:
        self.recorded = recorded

    def now(self) -> datetime:
        return timezone.now()

    async def db(self, fn: Any, /, **kwargs: Any) -> Any:
        return fn(**kwargs)  # inside the check's rolled-back transaction

    async def sleep(self, *, run_id: UUID, seq: int, label: str, **_: Any) -> None:
        if "resumed_at" not in self.recorded[seq].result:
            raise _Stop("parked", seq)

    async def wait_for_event(self, *, seq: int, replay: dict[str, Any] | None, **_: Any) -> Any:
        if replay is None:
            raise _Stop("parked", seq)
        return None


class _ReplayContext(JourneyContext):
    """The real context, noting the label the code gives each recorded position."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last = max(self._recorded or {}, default=0)
        self.label: str | None = None
        self.relabelled: list[tuple[int, str, str, str]] = []  # seq, kind, recorded, now

    async def step(self, kind: str, label: str, compute: Any, *, encode: Any) -> dict[str, Any]:
        self.label = label
        return await super().step(kind, label, compute, encode=encode)

    async def db_step(self, kind: str, label: str, compute: Any, *, encode: Any) -> dict[str, Any]:
        self.label = label
        return await super().db_step(kind, label, compute, encode=encode)

    async def sleep(self, duration: Any, label: str = "") -> Any:
        self.label = label or f"sleep:{duration}"
        return await super().sleep(duration, label)

    async def wait_for_event(self, event: str, timeout: Any, label: str = "", **kwargs: Any) -> Any:
        self.label = label or f"wait:{event}"
        return await super().wait_for_event(event, timeout, label, **kwargs)

    async def checkpoint(self, label: str) -> None:
        self.label = label
        await super().checkpoint(label)

    async def _position(self, kind: str) -> tuple[int, RunStep | None]:
        if self._seq + 1 > self.last:
            raise _Stop("frontier", self._seq + 1)
        label, self.label = self.label, None
        seq, recorded = await super()._position(kind)
        if recorded is not None and label is not None and recorded.label != label[:200]:
            self.relabelled.append((seq, kind, recorded.label, label[:200]))
        return seq, recorded


def run_replay(*, journey: Journey, run: JourneyRun, recorded: dict[int, RunStep]) -> RunVerdict:
    """Replay one run's recorded steps through `journey` and judge where it would go."""
    user = JourneyUser(
        id=run.contact.user_id,
        email=run.contact.email or "",
        properties=dict(run.properties or {}),
        state_id=str(run.id),
        journey_id=journey.id,
        journey_name=journey.name,
        contact_id=str(run.contact_id),
    )
    ctx = _ReplayContext(
        journey=journey,
        run_id=run.id,
        contact_id=run.contact_id,
        user=user,
        backend=_ReplayBackend(recorded),
        recorded=recorded,
    )
    verdict = _verdict_for(run)
    token = current_context.set(ctx)
    coro = journey.run(user, ctx)
    try:
        coro.send(None)
    except _Stop:
        pass
    except StopIteration:
        if ctx.last > ctx._seq:
            return verdict(NEW_PATH, ctx._seq, f"completes after step {ctx._seq} of {ctx.last} recorded")
    except JourneyExit as stop:
        return verdict(NEW_PATH, ctx._seq, f"exits ({stop.reason}) at step {ctx._seq} of {ctx.last} recorded")
    except NonDeterministicJourney as error:
        return verdict(NONDETERMINISTIC, ctx._seq, str(error))
    except Exception as error:
        return verdict(FAILS, ctx._seq, f"the replay raises {type(error).__name__}: {error}")
    else:  # the journey awaited something outside ctx: it cannot be replayed here
        return verdict(FAILS, ctx._seq, "the journey awaits something other than ctx; it cannot replay")
    finally:
        coro.close()
        current_context.reset(token)
    parked_at = [r for r in ctx.relabelled if r[1] in _PARKING and r[2] == run.current_node]
    if parked_at:
        seq, kind, old, new = parked_at[-1]
        return verdict(LABEL_GONE, seq, f"parked at {old!r}; step {seq} is now the {kind} {new!r}")
    if ctx.relabelled:
        changes = "; ".join(f"step {s} {k} {old!r} is now {new!r}" for s, k, old, new in ctx.relabelled)
        return verdict(NEW_PATH, ctx.relabelled[0][0], changes)
    return verdict(OK, None, "")


def _verdict_for(run: JourneyRun) -> Any:
    def make(outcome: str, seq: int | None, detail: str) -> RunVerdict:
        return RunVerdict(
            run_id=str(run.id),
            user_id=run.contact.user_id,
            status=run.status,
            current_node=run.current_node,
            version=run.version,
            outcome=outcome,
            seq=seq,
            detail=detail,
        )

    return make


def _live_runs(journey_ids: Iterable[str] | None) -> dict[str, list[JourneyRun]]:
    runs = JourneyRun.objects.filter(status__in=JourneyRun.LIVE_STATUSES).select_related("contact")
    if journey_ids is not None:
        runs = runs.filter(journey_id__in=list(journey_ids))
    grouped: dict[str, list[JourneyRun]] = defaultdict(list)
    for run in runs.order_by("journey_id", "entered_at", "id"):
        grouped[run.journey_id].append(run)
    return grouped


def _step_logs(runs: list[JourneyRun]) -> dict[UUID, dict[int, RunStep]]:
    logs: dict[UUID, dict[int, RunStep]] = defaultdict(dict)
    for step in RunStep.objects.filter(run_id__in=[r.id for r in runs]).order_by("run_id", "seq"):
        logs[step.run_id][step.seq] = step
    return logs


def journeys_check(*, journey_ids: Iterable[str] | None = None, lint: bool = True) -> CheckReport:
    """Judge every live run (of `journey_ids`, or of every journey) against the code as it is now,
    and lint the defined journeys. Reads only: the replays run in a transaction rolled back."""
    wanted = set(journey_ids) if journey_ids is not None else None
    with transaction.atomic():
        live = _live_runs(wanted)
        defined = {j.id: j for j in registry.all() if wanted is None or j.id in wanted}
        reports: list[JourneyReport] = []
        for journey_id in sorted(set(defined) | set(live)):
            journey = defined.get(journey_id)
            runs = live.get(journey_id, [])
            report = JourneyReport(journey_id=journey_id, version=journey_version(journey) if journey else "")
            if journey is None:
                report.verdicts = [
                    _verdict_for(run)(JOURNEY_GONE, None, "no journey with this id is defined")
                    for run in runs
                ]
            else:
                logs = _step_logs(runs)
                report.kept = {version: 0 for version in registry.kept(journey_id)}
                for run in runs:
                    target = registry.for_version(journey, run.version)
                    verdict = run_replay(journey=target, run=run, recorded=logs[run.id])
                    if target is not journey:
                        report.kept[run.version] += 1
                        kept = f"on kept version {run.version}" + (
                            f": {verdict.detail}" if verdict.detail else ""
                        )
                        verdict = replace(verdict, detail=kept)
                    report.verdicts.append(verdict)
                if lint:
                    report.lint = journey_lint(journey)
            reports.append(report)
        transaction.set_rollback(True)
    return CheckReport(journeys=reports, checked_at=timezone.now())


def journeys_check_log(logger: Any) -> CheckReport | None:
    """`runworker` at start: log the same summary `manage.py journeys_check` prints (a warning per
    journey whose runs would break). A check that cannot run never keeps the worker from starting."""
    try:
        report = journeys_check(journey_ids=[j.id for j in registry.loaded()], lint=False)
    except Exception as error:  # the worker's own start reports a database that is not there
        logger.warning("journeys_check could not run: %s", error)
        return None
    for journey in report.journeys:
        if journey.breaking:
            outcomes = ", ".join(f"{o} {journey.count(o)}" for o in BREAKS if journey.count(o))
            logger.warning(
                "journeys_check: %s: %d live runs would break (%s); run `manage.py journeys_check %s`",
                journey.journey_id,
                len(journey.breaking),
                outcomes,
                journey.journey_id,
            )
    (logger.warning if report.breaking else logger.info)(report.summary())
    return report
