"""Invariant checks for journeys, over generated event sequences (part of `journeys.testing`).

A journey passes its example tests and still breaks a promise for an ordering nobody wrote down.
`journey_scenarios(journey)` is a Hypothesis strategy of event sequences for one journey: its
trigger, exit and awaited events (with properties that do and do not satisfy their conditions),
random gaps, duplicates, out-of-order timestamps, unsubscribes, worker crashes and resumes.
`play(harness, journey, scenario)` runs one on the virtual-time harness and `check_invariants`
returns every promise it broke:

- at most one live run per contact and journey;
- no email to a contact after an exit event of the run or an unsubscribe, except operator mail;
- no journey step sends twice, across crashes and replays (every email of a run is one recorded
  send step);
- every run ends (completed, exited, or failed with a reason) once time passes its longest wait;
- no frequency cap exceeded: no span of a cap's window holds more of a contact's sends of that
  category than the cap allows (HOGSEND_FREQUENCY_CAPS);
- no send inside quiet hours: no email went out inside its category's window in the recipient's
  time zone (HOGSEND_QUIET_HOURS).

Give the scenario's users time zones with `play(..., timezones={"ada": "America/New_York"})`.

```
from hypothesis import given, settings
from journeys.invariants import check_invariants, journey_scenarios, play
from journeys.testing import JourneyHarness

@settings(max_examples=50, derandomize=True, deadline=None)
@given(scenario=journey_scenarios(my_journey, awaited=["invoice.paid"]))
def test_my_journey_keeps_its_promises(db, scenario):
    with JourneyHarness() as harness:
        assert check_invariants(play(harness, my_journey, scenario)) == []
```

Needs `hypothesis` (a test dependency). Each `play` runs inside a savepoint that is rolled back,
so examples never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count

from contacts.models import Contact, Event
from contacts.services import contact_unsubscribe
from emails.models import EmailLog
from emails.policy import send_policy
from journeys.conditions import Condition
from journeys.definition import Journey
from journeys.durations import Duration, days, journey_time
from journeys.models import JourneyRun, RunStep

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from journeys.testing import JourneyHarness

LONGEST_GAP = days(3)  # the widest gap a scenario draws between two steps
SETTLE = days(30)  # how long `play` lets pass at the end: past any shipped journey's longest wait
SENT = (
    EmailLog.Status.SENT,
    EmailLog.Status.DELIVERED,
    EmailLog.Status.OPENED,
    EmailLog.Status.CLICKED,
)


@dataclass(frozen=True)
class Step:
    """One thing that happens in a scenario."""

    kind: str  # "emit" | "advance" | "unsubscribe" | "crash" | "resume"
    user: str = ""
    event: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    gap: timedelta = timedelta(0)  # "advance": how far; "emit": how far back it occurred
    duplicate: bool = False  # "emit": sent twice with one idempotency key


@dataclass
class Trace:
    """What a scenario did, step by step: the record `check_invariants` judges."""

    journey: Journey
    steps: list[Step] = field(default_factory=list)
    # (step index, user, event name, properties, occurred_at) of every emitted event
    emitted: list[tuple[int, str, str, dict[str, Any], datetime]] = field(default_factory=list)
    unsubscribed: dict[str, int] = field(default_factory=dict)  # user -> step index
    email_step: dict[Any, int] = field(default_factory=dict)  # EmailLog id -> step it was sent in
    live_overlaps: list[tuple[int, str]] = field(default_factory=list)
    ended_at_step: int = 0
    runs: list[JourneyRun] = field(default_factory=list)
    emails: list[EmailLog] = field(default_factory=list)
    send_steps: dict[Any, set[int]] = field(default_factory=dict)  # run id -> seqs of send steps
    timezones: dict[str, str] = field(default_factory=dict)  # user -> IANA zone


def _values_for(conditions: Iterable[Condition]) -> dict[str, list[Any]]:
    """For each property a rule looks at: a value that satisfies it and a few that do not."""
    candidates: dict[str, list[Any]] = {}
    for condition in conditions:
        root = condition.property.split(".")[0]
        values = candidates.setdefault(root, [None, "other", 0, True])
        value = condition.value
        if "." in condition.property:
            value = _nest(condition.property.split(".")[1:], value)
        if value is not None and value not in values:
            values.append(value)
        if isinstance(condition.value, (int, float)) and not isinstance(condition.value, bool):
            values.extend([condition.value + 1, condition.value - 1])
    return candidates


def _satisfying(conditions: Iterable[Condition]) -> dict[str, Any]:
    """Properties that meet every condition of a rule (as far as one value can)."""
    properties: dict[str, Any] = {}
    for condition in conditions:
        op, value = condition.operator, condition.value
        if op in ("not_exists",) or (op == "eq" and value is None):
            continue
        if op == "eq":
            chosen = value
        elif op in ("gt", "gte", "lt", "lte"):
            bigger = op in ("gt", "gte")
            if isinstance(value, str):
                chosen = value + "z" if bigger else ""
            else:
                chosen = value + 1 if bigger else value - 1
        elif op == "contains":
            chosen = [value]
        elif op == "neq":
            chosen = "not-" + str(value)
        else:  # exists, or neq(None)
            chosen = "present"
        parts = condition.property.split(".")
        properties[parts[0]] = _nest(parts[1:], chosen) if len(parts) > 1 else chosen
    return properties


def _nest(parts: Sequence[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


def journey_scenarios(
    journey: Journey,
    *,
    awaited: Iterable[str] = (),
    users: Sequence[str] = ("ada", "bob"),
    max_steps: int = 12,
    longest_gap: Duration = LONGEST_GAP,
) -> SearchStrategy[list[Step]]:
    """Event sequences for `journey`: its trigger, `exit_on` and `awaited` event names (list what
    the journey waits for or looks up in history), with properties drawn from the values its
    rules compare with, random gaps, duplicates, backdated events, unsubscribes, crashes and
    resumes."""
    from hypothesis import strategies as st

    rules = [journey.trigger, *journey.exit_on]
    names = sorted({rule.event for rule in rules} | set(awaited))
    values = _values_for(c for rule in rules for c in rule.where)
    # Mostly properties that meet a rule's conditions (so runs start and exits fire), sometimes
    # any mix of the values the rules compare with.
    properties = st.one_of(
        st.sampled_from([_satisfying(rule.where) for rule in rules]),
        st.sampled_from([_satisfying(rule.where) for rule in rules]),
        st.fixed_dictionaries(
            {}, optional={name: st.sampled_from(options) for name, options in values.items()}
        ),
    )
    span = journey_time(longest_gap)
    gaps = st.integers(min_value=0, max_value=int(span.total_seconds()) // 60).map(
        lambda minutes: timedelta(minutes=minutes)
    )
    user = st.sampled_from(list(users))
    # The trigger more often than anything else, so most scenarios have a run to break.
    name = st.sampled_from([*names, journey.trigger.event])
    emit = st.builds(
        Step,
        kind=st.just("emit"),
        user=user,
        event=name,
        properties=properties,
        gap=st.one_of(gaps, st.just(timedelta(0))),
        duplicate=st.booleans(),
    )
    advance = st.builds(Step, kind=st.just("advance"), gap=gaps)
    step = st.one_of(
        emit,
        emit,
        emit,
        advance,
        advance,
        st.builds(Step, kind=st.just("crash"), user=user),
        st.builds(Step, kind=st.just("resume")),
        st.builds(Step, kind=st.just("unsubscribe"), user=user),
    )
    # Every scenario opens with a trigger, so there is a run for the rest to disturb.
    first = st.builds(
        Step,
        kind=st.just("emit"),
        user=user,
        event=st.just(journey.trigger.event),
        properties=st.just(_satisfying(journey.trigger.where)),
    )
    return st.tuples(first, st.lists(step, max_size=max_steps - 1)).map(lambda t: [t[0], *t[1]])


def play(
    harness: JourneyHarness,
    journey: Journey,
    scenario: Sequence[Step],
    *,
    settle: Duration = SETTLE,
    timezones: dict[str, str] | None = None,
) -> Trace:
    """Run a scenario on the harness, then let `settle` pass (past the journey's longest wait),
    and return its trace. Everything it wrote is rolled back before this returns; the trace
    holds what the checks need. `timezones` gives users a `timezone` contact property."""
    trace = Trace(journey=journey, steps=list(scenario), timezones=dict(timezones or {}))
    with transaction.atomic():
        for index, step in enumerate(scenario, start=1):
            _play_step(harness, trace, index, step)
            _observe(trace, index)
        for crashed in list(harness._crashed.values()):
            harness.resume(JourneyRun.objects.get(engine_run_id=crashed.engine_run_id))
        harness.advance(settle)
        trace.ended_at_step = len(scenario) + 1
        _observe(trace, trace.ended_at_step)
        trace.runs = list(
            JourneyRun.objects.filter(journey_id=journey.id).select_related(
                "contact", "trigger_event__contact"
            )
        )
        trace.emails = list(EmailLog.objects.select_related("contact").order_by("created_at"))
        for run_id, seq in RunStep.objects.filter(
            run__journey_id=journey.id, kind=RunStep.Kind.SEND
        ).values_list("run_id", "seq"):
            trace.send_steps.setdefault(run_id, set()).add(seq)
        transaction.set_rollback(True)
    return trace


def _play_step(harness: JourneyHarness, trace: Trace, index: int, step: Step) -> None:
    if step.kind == "advance":
        harness.advance(step.gap)
    elif step.kind == "emit":
        occurred_at = harness.now() - step.gap
        key = f"scenario:{index}" if step.duplicate else None
        zone = trace.timezones.get(step.user)
        for _ in range(2 if step.duplicate else 1):
            harness.emit(
                step.event,
                user_id=step.user,
                email=f"{step.user}@example.com",
                contact_properties={"timezone": zone} if zone else None,
                properties=step.properties,
                idempotency_key=key,
                at=occurred_at,
            )
        trace.emitted.append((index, step.user, step.event, step.properties, occurred_at))
    elif step.kind == "unsubscribe":
        contact = Contact.objects.filter(user_id=step.user).first()
        if contact is not None:
            contact_unsubscribe(contact=contact)
            trace.unsubscribed.setdefault(step.user, index)
    elif step.kind == "crash":
        for run in JourneyRun.objects.filter(
            journey_id=trace.journey.id, contact__user_id=step.user, status__in=JourneyRun.LIVE_STATUSES
        ):
            if harness._executing(run) is not None:
                harness.crash(run)
    elif step.kind == "resume":
        for crashed in list(harness._crashed.values()):
            harness.resume(JourneyRun.objects.get(engine_run_id=crashed.engine_run_id))


def _observe(trace: Trace, index: int) -> None:
    for email_id in EmailLog.objects.filter(status__in=SENT).values_list("id", flat=True):
        trace.email_step.setdefault(email_id, index)
    overlapping = (
        JourneyRun.objects.filter(journey_id=trace.journey.id, status__in=JourneyRun.LIVE_STATUSES)
        .values("contact__user_id")
        .annotate(live=Count("id"))
        .filter(live__gt=1)
    )
    trace.live_overlaps += [(index, row["contact__user_id"]) for row in overlapping]


def check_invariants(trace: Trace, *, allow_failed_runs: bool = False) -> list[str]:
    """Every promise the trace broke, in words (an empty list when all held)."""
    problems = [f"step {i}: {user} had two live runs" for i, user in trace.live_overlaps]
    journey = trace.journey
    sent = [e for e in trace.emails if e.status in SENT]

    for email in sent:
        if email.operator_mail:
            continue
        step = trace.email_step.get(email.id, 0)
        user = email.contact.user_id if email.contact else ""
        unsubscribed = trace.unsubscribed.get(user)
        if unsubscribed is not None and step > unsubscribed:
            problems.append(f"{email.template!r} reached {user} in step {step}, after they unsubscribed")

    for run in trace.runs:
        trigger_at = run.trigger_event.occurred_at if run.trigger_event else None
        exits = [
            index
            for index, user, name, properties, occurred_at in trace.emitted
            if user == run.contact.user_id
            and trigger_at is not None
            and occurred_at >= trigger_at
            and (run.trigger_event is None or index != _emit_index(trace, run.trigger_event))
            and journey.exit_rule_for(name, properties) is not None
        ]
        mail = [e for e in sent if e.run_id == run.id]
        if exits:
            late = [e for e in mail if trace.email_step.get(e.id, 0) > min(exits)]
            problems += [
                f"run {run.id}: {e.template!r} sent in step {trace.email_step.get(e.id)} after the exit "
                f"event of step {min(exits)}"
                for e in late
            ]
        steps = trace.send_steps.get(run.id, set())
        logged = [e for e in trace.emails if e.run_id == run.id]
        if len(logged) > len(steps):
            problems.append(f"run {run.id}: {len(logged)} emails for {len(steps)} send steps")
        for e in logged:
            seq = e.idempotency_key.rsplit(":", 1)[-1]
            if not seq.isdigit() or int(seq) not in steps:
                problems.append(f"run {run.id}: email {e.idempotency_key!r} is no recorded send step")
        if run.status in JourneyRun.LIVE_STATUSES:
            problems.append(f"run {run.id} is still {run.status} after time passed its longest wait")
        elif run.status == JourneyRun.Status.FAILED and (not allow_failed_runs or not run.error):
            problems.append(f"run {run.id} failed: {run.error.splitlines()[0] if run.error else 'no reason'}")
    return problems + cap_breaches(trace.emails) + quiet_hours_breaches(trace.emails)


def _gone(emails: Iterable[EmailLog]) -> list[EmailLog]:
    """Emails that went out (or may have: `unknown`), with the moment they did."""
    return [e for e in emails if e.status in (*SENT, EmailLog.Status.UNKNOWN) and e.sent_at is not None]


def cap_breaches(emails: Iterable[EmailLog]) -> list[str]:
    """Every span of a cap's window that holds more sends to one contact than the cap allows."""
    policy = send_policy()
    by_pair: dict[tuple[str, str], list[datetime]] = {}
    for email in _gone(emails):
        if policy.caps_for(email.category):
            who = str(email.contact_id or email.to_email.lower())
            by_pair.setdefault((who, email.category), []).append(email.sent_at)  # type: ignore[arg-type]
    problems = []
    for (who, category), moments in by_pair.items():
        moments.sort()
        for cap in policy.caps_for(category):
            for first, last in zip(moments, moments[cap.limit :], strict=False):
                if last - first < cap.window:
                    problems.append(
                        f"{who}: {cap.limit + 1} {category} emails between {first:%Y-%m-%d %H:%M} and "
                        f"{last:%Y-%m-%d %H:%M}, over the cap of {cap.limit} per {cap.window}"
                    )
                    break
    return problems


def quiet_hours_breaches(emails: Iterable[EmailLog]) -> list[str]:
    """Every email that went out inside its category's quiet hours in the recipient's zone."""
    from contacts.timezones import contact_zone

    policy = send_policy()
    problems = []
    for email in _gone(emails):
        window = policy.quiet_window(email.category)
        if window is None:
            continue
        zone = contact_zone(email.contact.properties if email.contact else None)
        if window.contains(email.sent_at, zone):  # type: ignore[arg-type]
            local = email.sent_at.astimezone(zone)  # type: ignore[union-attr]
            problems.append(
                f"{email.template!r} reached {email.to_email} at {local:%H:%M} {zone.key}, inside the quiet "
                f"hours {window.start:%H:%M}-{window.end:%H:%M} of {email.category!r} mail"
            )
    return problems


def _emit_index(trace: Trace, event: Event) -> int | None:
    """The scenario step that emitted this event (matched by contact, name and time)."""
    for index, user, name, _, occurred_at in trace.emitted:
        if user == event.contact.user_id and name == event.name and occurred_at == event.occurred_at:
            return index
    return None


# --- the two condition evaluators ---------------------------------------------------------------

_KEYS = ("a", "b", "a.b", "tags")


def condition_cases() -> SearchStrategy[tuple[Condition, dict[str, Any]]]:
    """A condition and a JSON object of properties to test it on: strings, integers, doubles,
    booleans, nulls, lists and nested objects, under keys the condition may or may not name."""
    from hypothesis import strategies as st

    from journeys.conditions import OPERATORS, ORDERINGS

    text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=4)
    small = st.sampled_from(["", "a", "ab", "1", "true"])
    numbers = st.one_of(
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([0, 1, 1.0, -1, 2.5]),
    )
    scalars = st.one_of(st.none(), st.booleans(), numbers, small, text)
    json_values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
        ),
        max_leaves=6,
    )
    properties = st.dictionaries(st.sampled_from(_KEYS), json_values, max_size=4)

    @st.composite
    def condition(draw: Any) -> Condition:
        operator = draw(st.sampled_from(OPERATORS))
        path = draw(st.sampled_from(_KEYS))
        if operator in ("exists", "not_exists"):
            return Condition(path, operator)
        value = draw(st.one_of(numbers, small, text) if operator in ORDERINGS else scalars)
        return Condition(path, operator, value)

    return st.tuples(condition(), properties)


def evaluators_agree(condition: Condition, properties: dict[str, Any]) -> bool:
    """The Python matcher and the CEL the engine gets give the same answer."""
    from journeys.testing import cel_matches

    return condition.matches(properties) is cel_matches(condition.to_cel(), properties)
