"""Hot paths carry a query budget: a journey start and ingest per event, counted statement by statement.

A journey start is what every launch, backfill and broadcast multiplies: enrollment (the guards and
the run row), the first send (consent, suppress window, the email row, delivery) and the first
sleep. The budgets are part of the design; a change that needs more round trips must say why here.
Savepoints are left out: they are how the harness nests a run inside the test's transaction, and
on the engine each unit of work is its own transaction. The lifecycle hooks' short-lived "nobody
listens" memory is emptied first, so each count is the worst case and never depends on timing.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from contacts.ingest import event_ingest
from emails.models import EmailLog
from integrations import lifecycle as integrations_lifecycle
from journeys.context import db_call
from journeys.definition import define_journey
from journeys.models import JourneyMapEdge
from journeys.send import send_email
from journeys.services import run_exit

# 9: enrollment 2 and its journey.entered destinations lookup; the send reads what it decides on
# in one statement (the key, the run under its lock, the suppression, the suppress window, the
# contact) and inserts its row; the claim keeps the message as sent in the same statement; the
# outcome; the park, which records the send's step too (no statement of its own). Plus the
# harness's read of the event. At the budget, not under it, so one more statement fails here.
JOURNEY_START_BUDGET = 9
INGEST_BUDGET = 2  # the ingest statement and the destinations lookup (tests/contacts/test_ingest_budget.py)
# A frequency cap on the send's category adds the (contact, category) advisory lock and the read of
# the slots taken; quiet hours are decided in memory; a category with neither adds nothing.
SEND_POLICY_STATEMENTS = 2


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def _budget_report(statements: list[str]) -> str:
    return "\n".join(f"{i + 1:3}. {sql[:160]}" for i, sql in enumerate(statements))


@pytest.mark.parametrize("policy", ["none", "capped"])
def test_a_journey_start_from_enrollment_to_its_first_sleep_stays_within_its_query_budget(
    journey_harness, settings, policy
):
    budget = JOURNEY_START_BUDGET
    if policy == "capped":
        settings.HOGSEND_QUIET_HOURS = {"*": ("03:00", "04:00")}  # the harness starts at 09:00 UTC
        settings.HOGSEND_FREQUENCY_CAPS = {"journey": [(3, "24h"), (5, "7d")]}
        budget += SEND_POLICY_STATEMENTS
    # The contact exists already (a first event of another name), as it does for most triggers.
    event_ingest(name="page.viewed", user_id="ada", email="ada@example.com")
    trigger = event_ingest(name="user.created", user_id="ada", email="ada@example.com", dispatch=False)

    integrations_lifecycle._nobody_listens.clear()
    with CaptureQueriesContext(connection) as captured:
        journey_harness.after_ingest(event_ids=[trigger.event.id], exited_run_ids=[])

    run = journey_harness.run("activation-welcome", "ada")
    assert (run.status, run.current_node) == ("waiting", "post-welcome")
    assert [log.status for log in EmailLog.objects.filter(run=run)] == ["sent"]
    statements = _statements(captured)
    assert len(statements) <= budget, _budget_report(statements)


@pytest.mark.parametrize("events", [1, 100])
def test_ingest_costs_the_same_statements_for_one_event_as_for_a_batch(db, events):
    from contacts.ingest import EventDraft, events_ingest

    event_ingest(name="warm", user_id="warm")  # first use of the lifecycle catalog etc.
    drafts = [
        EventDraft(name="page.viewed", user_id=f"u{i}", email=f"u{i}@example.com") for i in range(events)
    ]
    integrations_lifecycle._nobody_listens.clear()
    with CaptureQueriesContext(connection) as captured:
        outcomes = events_ingest(drafts=drafts)

    assert all(o.created for o in outcomes)
    statements = _statements(captured)
    assert len(statements) <= INGEST_BUDGET, _budget_report(statements)


# The statements every journey start runs, by a piece of each one's text: planned once per
# connection, not at every start (their planning cost as much as running them).
START_PATH_STATEMENTS = {
    "enrollment guards": "FOR NO KEY UPDATE OF c",
    "run insert": "exit_candidates AS",
    "send facts": "WITH run AS (SELECT status FROM journeys_journeyrun",
    "claim keeping the message": "claimed AS",
    "email row": "INSERT INTO emails_emaillog (",
    "outcome": "UPDATE emails_emaillog SET status =",
    "park with the send's record": "), before AS (",
}


@pytest.mark.parametrize("prepared", [True, False])
def test_the_start_paths_statements_are_prepared_once_per_connection(journey_harness, settings, prepared):
    settings.DB_PREPARED_STATEMENTS = prepared
    for user in ("ada", "bob"):
        journey_harness.start("activation-welcome", user_id=user, email=f"{user}@example.com")
    assert [log.status for log in EmailLog.objects.all()] == ["sent", "sent"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    found = {name for name, text in START_PATH_STATEMENTS.items() if any(text in s for s in statements)}
    assert found == (set(START_PATH_STATEMENTS) if prepared else set())


@define_journey(id="budget-last-send", name="One email, then the end", trigger="budget.started")
async def last_send(user, ctx):
    await send_email(to=user.email, template="activation/welcome")


@define_journey(
    id="budget-ended-meanwhile", name="Ended between its email and its end", trigger="budget.ended"
)
async def ended_meanwhile(user, ctx):
    await send_email(to=user.email, template="activation/welcome")
    await db_call(run_exit, run_id=ctx.run_id, reason="operator")  # not through the run's own unit


def test_a_run_that_ends_on_a_send_completes_with_the_sends_record_in_one_statement(
    journey_register, journey_harness
):
    journey_register(last_send)
    with CaptureQueriesContext(connection) as captured:
        journey_harness.emit("budget.started", user_id="ada", email="ada@example.com")

    run = journey_harness.run("budget-last-send", "ada")
    assert run.status == "completed" and run.ended_at is not None
    assert list(run.steps.values_list("kind", "label")) == [("send", "activation/welcome")]
    assert run.map_node == "send:activation/welcome"
    edges = dict(
        JourneyMapEdge.objects.filter(journey_id="budget-last-send")
        .values_list("target")
        .annotate(n=Sum("runs"))
    )
    assert edges == {"send:activation/welcome": 1, "end:completed": 1}
    statements = _statements(captured)
    ends = [s for s in statements if "completed AS (" in s]
    assert len(ends) == 1, _budget_report(statements)
    after_send = statements[statements.index(ends[0]) - 1 :]
    assert not any("recorded AS (" in s for s in after_send), _budget_report(statements)


def test_a_run_ended_between_its_last_send_and_its_end_takes_neither(journey_register, journey_harness):
    journey_register(ended_meanwhile)
    journey_harness.emit("budget.ended", user_id="ada", email="ada@example.com")

    run = journey_harness.run("budget-ended-meanwhile", "ada")
    assert (run.status, run.exit_reason) == ("exited", "operator")
    assert not run.steps.exists()  # the send's record needs a live run, as `step_record` does
    assert [log.status for log in EmailLog.objects.filter(run=run)] == ["sent"]


@define_journey(id="budget-history", name="A history read, then the end", trigger="budget.history")
async def history_then_end(user, ctx):
    if not (await ctx.history.has_event(user.id, "budget.never")).found:
        return


def test_a_history_read_is_recorded_with_the_runs_next_unit_not_in_a_statement_of_its_own(
    journey_register, journey_harness
):
    journey_register(history_then_end)
    with CaptureQueriesContext(connection) as captured:
        journey_harness.emit("budget.history", user_id="ada", email="ada@example.com")

    run = journey_harness.run("budget-history", "ada")
    assert run.status == "completed"
    assert list(run.steps.values_list("kind", "label", "result")) == [
        ("history", "has_event:budget.never", {"found": False, "count": 0})
    ]
    statements = _statements(captured)
    assert not any("recorded AS (" in s for s in statements), _budget_report(statements)
    assert sum("completed AS (" in s for s in statements) == 1, _budget_report(statements)
