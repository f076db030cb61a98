"""Digests: a contact's matching events over a window become one run and one email, exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contacts.ingest import event_ingest
from emails.models import EmailLog
from journeys.definition import Digest as DigestRule
from journeys.definition import JourneyDefinitionError, define_journey
from journeys.digests import digest_close, digest_park
from journeys.durations import days, hours, minutes
from journeys.models import Digest, DigestItem, JourneyRun, RunStep
from journeys.send import send_email
from tests.support import in_thread, wait_until

COMMENT = "comment.created"


def comment(harness, user_id: str, text: str, **at):
    return harness.emit(
        COMMENT,
        user_id=user_id,
        email=f"{user_id}@example.com",
        properties={"author": "Grace", "text": text, "on": "Q3 report"},
        **at,
    )


def digest_emails(harness, user_id: str) -> list[EmailLog]:
    return [log for log in harness.emails(f"{user_id}@example.com") if log.template == "comments/digest"]


def texts(log: EmailLog) -> list[str]:
    return [c["text"] for c in log.props["comments"]]


def test_comments_within_the_hour_arrive_in_one_email(journey_harness):
    comment(journey_harness, "ada", "first")
    comment(journey_harness, "ada", "second", at=minutes(20))
    comment(journey_harness, "ada", "third", at=minutes(30))
    assert digest_emails(journey_harness, "ada") == []  # the window is still open

    journey_harness.advance(hours(1))

    (email,) = digest_emails(journey_harness, "ada")
    assert email.status == EmailLog.Status.SENT
    assert texts(email) == ["first", "second", "third"]
    assert email.props["count"] == 3
    (run,) = JourneyRun.objects.filter(journey_id="comment-digest")
    assert run.status == "completed"
    assert journey_harness.skip_reasons("comment-digest", "ada") == ["digest_collected", "digest_collected"]
    (digest,) = Digest.objects.filter(journey_id="comment-digest")
    assert (digest.status, digest.item_count, digest.run_id) == ("closed", 3, run.id)


def test_the_window_is_counted_from_the_first_comment(journey_harness):
    comment(journey_harness, "ada", "first")
    journey_harness.advance(minutes(59))
    assert digest_emails(journey_harness, "ada") == []
    journey_harness.advance(minutes(1))
    assert [texts(e) for e in digest_emails(journey_harness, "ada")] == [["first"]]


def test_a_comment_after_the_window_opens_a_new_digest(journey_harness):
    comment(journey_harness, "ada", "one")
    comment(journey_harness, "ada", "two", at=minutes(10))
    journey_harness.advance(hours(1))
    comment(journey_harness, "ada", "three")
    assert [
        (status, [p["text"] for p in items])
        for status, items in journey_harness.digests("comment-digest", "ada")
    ] == [
        ("closed", ["one", "two"]),
        ("open", ["three"]),
    ]
    journey_harness.advance(hours(1))

    assert [texts(e) for e in digest_emails(journey_harness, "ada")] == [["one", "two"], ["three"]]
    assert JourneyRun.objects.filter(journey_id="comment-digest", status="completed").count() == 2


def test_each_contact_has_a_digest_of_its_own(journey_harness):
    comment(journey_harness, "ada", "for ada")
    comment(journey_harness, "bob", "for bob")
    comment(journey_harness, "ada", "also for ada")
    journey_harness.advance(hours(1))
    assert [texts(e) for e in digest_emails(journey_harness, "ada")] == [["for ada", "also for ada"]]
    assert [texts(e) for e in digest_emails(journey_harness, "bob")] == [["for bob"]]


def test_a_batch_of_comments_shares_one_digest(journey_harness):
    from contacts.ingest import EventDraft, events_ingest

    events_ingest(
        drafts=[
            EventDraft(name=COMMENT, user_id="ada", email="ada@example.com", properties={"text": str(i)})
            for i in range(5)
        ]
    )
    journey_harness.advance(hours(1))
    (email,) = digest_emails(journey_harness, "ada")
    assert sorted(texts(email)) == ["0", "1", "2", "3", "4"]


def test_an_exit_mid_window_sends_nothing_and_the_next_comment_starts_afresh(journey_harness):
    comment(journey_harness, "ada", "before the exit")
    journey_harness.emit("user.deleted", user_id="ada", at=minutes(10))
    journey_harness.advance(hours(1))
    assert digest_emails(journey_harness, "ada") == []
    assert Digest.objects.get().status == "discarded"

    comment(journey_harness, "ada", "after the exit")
    journey_harness.advance(hours(1))
    assert [texts(e) for e in digest_emails(journey_harness, "ada")] == [["after the exit"]]


def test_an_unsubscribed_contact_gets_no_digest_and_opens_none_that_lingers(journey_harness):
    from contacts.models import Contact

    event_ingest(name="page.viewed", user_id="ada", email="ada@example.com")
    Contact.objects.filter(user_id="ada").update(unsubscribed_at="2026-01-01T00:00:00Z")
    comment(journey_harness, "ada", "unheard")
    comment(journey_harness, "ada", "unheard too")
    journey_harness.advance(hours(2))

    assert digest_emails(journey_harness, "ada") == []
    assert list(Digest.objects.values_list("status", flat=True)) == ["discarded", "discarded"]
    assert journey_harness.skip_reasons("comment-digest", "ada") == ["user_unsubscribed", "user_unsubscribed"]


def test_comments_that_fail_the_trigger_condition_are_not_collected(journey_register, journey_harness):
    @define_journey(
        id="mention-digest",
        name="Mentions",
        trigger={
            "event": "comment.mentioned",
            "where": {"property": "muted", "operator": "neq", "value": True},
        },
        entry_limit="unlimited",
        digest=DigestRule("mentions", window=hours(1)),
    )
    async def mentions(user, ctx):
        digest = await ctx.digest()
        await send_email(to=user.email, template="activation/nudge", props={"n": digest.count})

    journey_register(mentions)
    journey_harness.emit(
        "comment.mentioned", user_id="ada", email="ada@example.com", properties={"muted": True}
    )
    journey_harness.emit("comment.mentioned", user_id="ada", email="ada@example.com", properties={"n": 1})
    journey_harness.emit(
        "comment.mentioned", user_id="ada", email="ada@example.com", properties={"muted": True}
    )
    journey_harness.advance(hours(1))

    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"n": 1}]
    assert journey_harness.skip_reasons("mention-digest", "ada") == [
        "trigger_conditions_not_met",
        "trigger_conditions_not_met",
    ]


# --- replays and crashes ------------------------------------------------------------------------


@define_journey(
    id="slow-digest",
    name="Digest, then a day's pause before the email",
    trigger="note.added",
    entry_limit="unlimited",
    digest=DigestRule("notes", window=hours(1)),
)
async def slow_digest(user, ctx):
    digest = await ctx.digest("notes", window=hours(1))
    await ctx.sleep(days(1), label="pause")
    await send_email(
        to=user.email, template="activation/nudge", props={"notes": [p["n"] for p in digest.properties()]}
    )


def note(harness, n: int, **at):
    return harness.emit("note.added", user_id="ada", email="ada@example.com", properties={"n": n}, **at)


def test_a_replay_mid_window_still_collects_everything_and_sends_once(journey_register, journey_harness):
    journey_register(slow_digest)
    note(journey_harness, 1)
    run = journey_harness.run("slow-digest", "ada")
    journey_harness.replay(run)
    note(journey_harness, 2, at=minutes(5))
    journey_harness.replay(run)
    journey_harness.advance(hours(1) + days(1))

    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"notes": [1, 2]}]


def test_a_replay_after_the_close_returns_the_same_items_even_as_new_events_arrive(
    journey_register, journey_harness
):
    journey_register(slow_digest)
    note(journey_harness, 1)
    note(journey_harness, 2, at=minutes(30))
    journey_harness.advance(hours(1))  # closed; the run pauses a day before sending
    run = journey_harness.run("slow-digest", "ada")
    (step,) = run.steps.filter(kind=RunStep.Kind.DIGEST)
    assert [i["properties"]["n"] for i in step.result["items"]] == [1, 2]

    note(journey_harness, 3)  # after the close: the next digest (its run waits for this one to end)
    journey_harness.replay(run)
    journey_harness.replay(run)
    assert run.steps.get(kind=RunStep.Kind.DIGEST).result == step.result
    journey_harness.advance(days(1))

    # The first digest's email once, with its own items; the one that opened while its run was
    # still live starts once that run ends, and (its window long past) sends at once.
    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"notes": [1, 2]}]
    journey_harness.advance(days(1))
    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"notes": [1, 2]}, {"notes": [3]}]
    assert journey_harness.skip_reasons("slow-digest", "ada") == ["digest_collected", "already_active"]
    assert [d.status for d in Digest.objects.order_by("opened_at")] == ["closed", "closed"]


def test_a_crash_during_the_window_loses_nothing_that_arrived_while_down(journey_register, journey_harness):
    journey_register(slow_digest)
    note(journey_harness, 1)
    run = journey_harness.run("slow-digest", "ada")
    journey_harness.crash(run)
    note(journey_harness, 2, at=minutes(10))
    note(journey_harness, 3, at=minutes(20))
    journey_harness.advance(hours(2))  # the worker comes back after the window ended
    journey_harness.resume(run)
    journey_harness.advance(days(1))

    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"notes": [1, 2, 3]}]


def test_a_digest_keeps_at_most_max_items_but_counts_them_all(journey_register, journey_harness):
    @define_journey(
        id="capped-digest",
        name="Capped",
        trigger="like.added",
        entry_limit="unlimited",
        digest=DigestRule("likes", window=hours(1), max_items=2),
    )
    async def capped(user, ctx):
        digest = await ctx.digest()
        await send_email(
            to=user.email,
            template="activation/nudge",
            props={"shown": [p["n"] for p in digest.properties()], "count": digest.count},
        )

    journey_register(capped)
    for n in range(4):
        journey_harness.emit(
            "like.added", user_id="ada", email="ada@example.com", properties={"n": n}, at=minutes(n)
        )
    journey_harness.advance(hours(1))
    assert [e.props for e in journey_harness.emails("ada@example.com")] == [{"shown": [0, 1], "count": 4}]


# --- definitions -----------------------------------------------------------------------------------


def test_a_digest_journey_must_be_able_to_run_more_than_once():
    with pytest.raises(JourneyDefinitionError, match="entry_limit='unlimited'"):

        @define_journey(id="d", name="d", trigger="x", digest=DigestRule("k", window=hours(1)))
        async def once(user, ctx): ...


@pytest.mark.parametrize(
    "rule, message",
    [
        (DigestRule("Bad Key", window=hours(1)), "digest key"),
        (DigestRule("k", window=hours(0)), "positive duration"),
        (DigestRule("k", window=hours(1), max_items=0), "max_items"),
    ],
)
def test_a_digest_that_makes_no_sense_is_refused_when_defined(rule, message):
    with pytest.raises(JourneyDefinitionError, match=message):

        @define_journey(id="d", name="d", trigger="x", entry_limit="unlimited", digest=rule)
        async def bad(user, ctx): ...


def test_a_ctx_digest_call_that_differs_from_the_declaration_fails_the_run(journey_register, journey_harness):
    @define_journey(
        id="mismatched",
        name="m",
        trigger="m.x",
        entry_limit="unlimited",
        digest=DigestRule("a", window=hours(1)),
    )
    async def mismatched(user, ctx):
        await ctx.digest("a", window=hours(2))

    journey_register(mismatched)
    journey_harness.emit("m.x", user_id="ada")
    run = journey_harness.run("mismatched", "ada")
    assert run.status == "failed" and "differs from the declared digest" in run.error


# --- cost ---------------------------------------------------------------------------------------------


def test_events_no_digest_collects_cost_ingest_nothing_and_a_collected_one_one_statement(db):
    from integrations import lifecycle as integrations_lifecycle
    from tests.journeys.test_query_budget import INGEST_BUDGET, _statements

    event_ingest(name="warm", user_id="ada", email="ada@example.com")
    integrations_lifecycle._nobody_listens.clear()
    with CaptureQueriesContext(connection) as plain:
        event_ingest(name="page.viewed", user_id="ada", dispatch=False)
    integrations_lifecycle._nobody_listens.clear()
    with CaptureQueriesContext(connection) as collected:
        event_ingest(name=COMMENT, user_id="ada", dispatch=False)

    # The destinations lookup aside (a single event asks it before it knows whether its contact
    # changes; a collected one only if it does), a collected event costs one statement more.
    def ingest_only(captured):
        return [sql for sql in _statements(captured) if "integrations_destination" not in sql]

    assert not any("journeys_digest" in sql for sql in _statements(plain))
    assert len(ingest_only(plain)) <= INGEST_BUDGET - 1
    assert len(ingest_only(collected)) == len(ingest_only(plain)) + 1
    assert DigestItem.objects.count() == 1


# --- real concurrency on PostgreSQL ---------------------------------------------------------------------


def _a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_racing_comments_end_in_one_digest():
    event_ingest(name="page.viewed", user_id="ada", email="ada@example.com")
    first_stored, release = threading.Event(), threading.Event()
    errors: list = []

    def first():
        with transaction.atomic():
            event_ingest(name=COMMENT, user_id="ada", properties={"text": "first"}, dispatch=False)
            first_stored.set()
            release.wait(30)

    one = in_thread(first, errors)
    assert first_stored.wait(30)
    two = in_thread(
        lambda: event_ingest(name=COMMENT, user_id="ada", properties={"text": "second"}, dispatch=False),
        errors,
    )
    wait_until(_a_backend_waits_on_a_lock, timeout=30, what="the second comment to wait for the first")
    release.set()
    one.join(30)
    two.join(30)

    assert errors == []
    (digest,) = Digest.objects.all()
    assert digest.item_count == 2 and digest.status == "open"
    assert digest.opened_by.properties == {"text": "first"}
    assert DigestItem.objects.filter(digest=digest).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_comment_racing_the_close_is_in_exactly_one_digest():
    from contacts.models import Contact

    opener = event_ingest(name=COMMENT, user_id="ada", properties={"text": "in the first"}, dispatch=False)
    contact = Contact.objects.get(user_id="ada")
    run = JourneyRun.objects.create(
        journey_id="comment-digest",
        contact=contact,
        trigger_event=opener.event,
        entered_at=opener.event.received_at,
    )
    parked = digest_park(run_id=run.id, seq=1, key="comments", label="digest:comments")
    closing, release = threading.Event(), threading.Event()
    outcome: dict = {}
    errors: list = []

    def close():
        with transaction.atomic():
            outcome.update(digest_close(run_id=run.id, seq=1, parked=parked, max_items=100))
            closing.set()
            release.wait(30)

    closer = in_thread(close, errors)
    assert closing.wait(30)
    late = in_thread(
        lambda: event_ingest(name=COMMENT, user_id="ada", properties={"text": "racing"}, dispatch=False),
        errors,
    )
    wait_until(_a_backend_waits_on_a_lock, timeout=30, what="the racing comment to wait for the close")
    release.set()
    closer.join(30)
    late.join(30)

    assert errors == []
    assert [i["properties"]["text"] for i in outcome["items"]] == ["in the first"]
    first, second = Digest.objects.order_by("opened_at")
    assert (first.status, first.item_count) == ("closed", 1)
    assert (second.status, second.item_count, second.opened_by.properties) == ("open", 1, {"text": "racing"})


# --- the Studio -------------------------------------------------------------------------------------


def test_the_run_page_lists_the_events_a_digest_collected(admin_client, journey_harness):
    from django.urls import reverse

    comment(journey_harness, "ada", "first of the hour")
    comment(journey_harness, "ada", "second of the hour", at=minutes(5))
    run = journey_harness.run("comment-digest", "ada")
    page = admin_client.get(reverse("admin:journeys_journeyrun_change", args=[run.pk])).content.decode()
    assert "2 events collected" in page and "first of the hour" in page and "second of the hour" in page

    journey_harness.advance(hours(1))
    page = admin_client.get(reverse("admin:journeys_journeyrun_change", args=[run.pk])).content.decode()
    assert "closed" in page and "second of the hour" in page


# --- the sweep: a digest whose opener never enrolled ------------------------------------------------


def _opener_lost(user_id: str, text: str):
    """A first comment whose start failed until the reconciler gave up on it: stored and opening
    its digest, never routed to the journey, set aside as `unsettled`."""
    from contacts.models import Event

    opened = event_ingest(
        name=COMMENT,
        user_id=user_id,
        email=f"{user_id}@example.com",
        properties={"author": "Grace", "text": text, "on": "Q3 report"},
        dispatch=False,
    )
    Event.objects.filter(pk=opened.event.pk).update(dispatch_state=Event.DispatchState.UNSETTLED)
    return opened.event


def test_a_digest_whose_opener_never_enrolled_is_handed_on_to_its_next_comment(journey_harness):
    from journeys.digests import digests_sweep

    _opener_lost("ada", "first")
    comment(journey_harness, "ada", "second", at=minutes(10))
    comment(journey_harness, "ada", "third", at=minutes(20))
    journey_harness.advance(hours(2))
    assert digest_emails(journey_harness, "ada") == []  # collected into a digest no run holds
    assert journey_harness.digests("comment-digest", "ada")[0][0] == "open"

    swept = digests_sweep()

    (digest,) = Digest.objects.filter(journey_id="comment-digest")
    assert swept.handed_on == [digest.id] and swept.discarded == []
    (email,) = digest_emails(journey_harness, "ada")
    assert email.status == EmailLog.Status.SENT and texts(email) == ["first", "second", "third"]
    run = journey_harness.run("comment-digest", "ada")
    assert run.trigger_event.properties["text"] == "second" and run.status == "completed"
    assert (digest.status, digest.run_id, digest.item_count) == ("closed", run.id, 3)
    assert journey_harness.skip_reasons("comment-digest", "ada") == ["digest_collected"]  # the third's
    assert digests_sweep().handed_on == []  # settled: nothing to do again


def test_a_stranded_digest_with_nothing_else_collected_is_discarded_and_the_next_comment_starts_afresh(
    journey_harness,
):
    from journeys.digests import digests_sweep

    _opener_lost("ada", "alone")
    journey_harness.advance(hours(2))

    swept = digests_sweep()

    assert swept.handed_on == [] and len(swept.discarded) == 1
    comment(journey_harness, "ada", "next day")
    journey_harness.advance(hours(1))
    assert [texts(e) for e in digest_emails(journey_harness, "ada")] == [["next day"]]
    assert [status for status, _ in journey_harness.digests("comment-digest", "ada")] == [
        "discarded",
        "closed",
    ]


def test_the_sweep_leaves_a_digest_whose_start_may_still_come(journey_harness, settings):
    from contacts.models import Event
    from journeys.digests import digests_sweep

    settings.DIGEST_START_GRACE_SECONDS = 600
    lost = _opener_lost("ada", "within grace")
    comment(journey_harness, "ada", "collected")
    journey_harness.advance(hours(1) + minutes(5))  # closed 5 minutes ago: inside the grace
    assert digests_sweep().handed_on == []
    # Past the grace, but the reconciler still re-pushes it (pushed, not given up on).
    Event.objects.filter(pk=lost.pk).update(dispatch_state=Event.DispatchState.DISPATCHED)
    journey_harness.advance(hours(1))
    swept = digests_sweep()
    assert (swept.handed_on, swept.discarded) == ([], [])
    assert [status for status, _ in journey_harness.digests("comment-digest", "ada")] == ["open"]
