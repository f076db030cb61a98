from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import AuditEntry
from journeys.models import JourneyRun
from tests.studio.conftest import messages_of

pytestmark = pytest.mark.django_db
RUNS = reverse("admin:journeys_journeyrun_changelist")


def listed(response) -> set:
    return {run.pk for run in response.context["cl"].result_list}


def test_runs_filter_by_journey_status_node_and_deadline(admin_client, studio_data):
    sleeping, waiting, completed, failed = (
        studio_data[k] for k in ("sleeping", "waiting", "completed", "failed")
    )
    assert listed(admin_client.get(RUNS)) == {sleeping.pk, waiting.pk, completed.pk, failed.pk}
    assert listed(admin_client.get(RUNS, {"journey_id": "activation-welcome"})) == {sleeping.pk, completed.pk}
    assert listed(admin_client.get(RUNS, {"status": "failed"})) == {failed.pk}
    assert listed(
        admin_client.get(RUNS, {"journey_id": "concierge-onboarding", "current_node": "await-csm"})
    ) == {waiting.pk}
    # ada sleeps two days; cy's wait times out in one: both within 7 days, only cy within 24 hours.
    assert listed(admin_client.get(RUNS, {"waiting_until": "24h"})) == {waiting.pk}
    assert listed(admin_client.get(RUNS, {"waiting_until": "7d"})) == {waiting.pk, sleeping.pk}
    assert listed(admin_client.get(RUNS, {"q": "ada"})) == {sleeping.pk}


def test_the_runs_list_does_not_grow_queries_with_rows(
    admin_client, studio_data, django_assert_max_num_queries
):
    with django_assert_max_num_queries(5):
        admin_client.get(RUNS)
    for i in range(30):
        JourneyRun.objects.create(
            journey_id="churn-prevention",
            contact=studio_data["ada"],
            status="completed",
            entered_at=studio_data["failed"].entered_at,
            current_node=f"n{i}",
        )
    with django_assert_max_num_queries(5):
        response = admin_client.get(RUNS)
    assert len(response.context["cl"].result_list) == 34


def test_a_runs_timeline_shows_sleeps_sends_and_the_engine_id(
    admin_client, studio_data, django_assert_max_num_queries
):
    run = studio_data["sleeping"]
    with django_assert_max_num_queries(4):
        response = admin_client.get(reverse("admin:journeys_journeyrun_change", args=[run.pk]))
    html = response.content.decode()
    kinds = [s["kind"] for s in response.context["steps"]]
    assert kinds[:2] == ["send", "sleep"]
    sleep = response.context["steps"][1]
    assert sleep["label"] == "post-welcome" and sleep["outcome"] == "sleeping" and sleep["deadline"]
    email_id = response.context["steps"][0]["email_id"]
    assert reverse("admin:emails_emaillog_change", args=[email_id]) in html
    assert run.engine_run_id in html


def test_a_waiting_runs_timeline_shows_the_wait_and_its_triggers(admin_client, studio_data):
    response = admin_client.get(reverse("admin:journeys_journeyrun_change", args=[studio_data["waiting"].pk]))
    steps = response.context["steps"]
    trigger = next(s for s in steps if s["kind"] == "trigger")
    assert trigger["label"] == "csm.assignment_requested"
    assert reverse("admin:contacts_event_change", args=[trigger["event_id"]]) in response.content.decode()
    wait = next(s for s in steps if s["kind"] == "wait")
    assert (wait["label"], wait["outcome"]) == ("await-csm", "waiting")


def test_a_failed_runs_page_shows_its_error(admin_client, studio_data):
    response = admin_client.get(reverse("admin:journeys_journeyrun_change", args=[studio_data["failed"].pk]))
    assert "TimeoutError: provider down" in response.content.decode()


def test_cancel_marks_the_run_exited_tells_the_engine_and_audits(
    admin_client, admin_user, studio_data, fake_engine
):
    run = studio_data["sleeping"]
    response = admin_client.post(reverse("admin:journeys_journeyrun_cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("exited", "cancelled_by_operator")
    assert fake_engine.cancelled == [run.pk]
    entry = AuditEntry.objects.get(action="run.cancel")
    assert (entry.actor, entry.target_id) == (admin_user, str(run.pk))
    assert any("Run cancelled" in m for m in messages_of(response))


def test_cancel_still_exits_the_run_when_the_engine_is_unreachable(admin_client, studio_data, no_engine):
    run = studio_data["waiting"]
    response = admin_client.post(reverse("admin:journeys_journeyrun_cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == "exited"
    assert any("engine was not told" in m for m in messages_of(response))


def test_cancel_refuses_an_ended_run_and_a_get(admin_client, studio_data, fake_engine):
    run = studio_data["completed"]
    url = reverse("admin:journeys_journeyrun_cancel", args=[run.pk])
    assert admin_client.get(url).status_code == 405
    admin_client.post(url)
    run.refresh_from_db()
    assert run.status == "completed" and fake_engine.cancelled == []
    assert not AuditEntry.objects.exists()


def test_the_cancel_list_action_cancels_only_live_runs(admin_client, studio_data, fake_engine):
    ids = [studio_data[k].pk for k in ("sleeping", "waiting", "completed")]
    admin_client.post(RUNS, {"action": "cancel_selected", "_selected_action": [str(i) for i in ids]})
    assert sorted(fake_engine.cancelled) == sorted(ids[:2])
    assert AuditEntry.objects.filter(action="run.cancel").count() == 2


def test_retry_hands_a_failed_run_to_the_engine_and_audits(admin_client, studio_data, fake_engine):
    run = studio_data["failed"]
    response = admin_client.post(reverse("admin:journeys_journeyrun_retry", args=[run.pk]), follow=True)
    assert fake_engine.retried == [run.pk]
    run.refresh_from_db()
    assert run.status == "active" and AuditEntry.objects.filter(action="run.retry").count() == 1
    assert any("Retry handed to the engine" in m for m in messages_of(response))


def test_retry_says_so_when_the_engine_cannot_retry(admin_client, studio_data, no_engine):
    run = studio_data["failed"]
    response = admin_client.post(reverse("admin:journeys_journeyrun_retry", args=[run.pk]), follow=True)
    assert any("Not retried" in m for m in messages_of(response))
    run.refresh_from_db()
    assert run.status == "failed" and "retry not handed to the engine" in run.error


def test_retry_refuses_a_run_that_did_not_fail(admin_client, studio_data, fake_engine):
    admin_client.post(reverse("admin:journeys_journeyrun_retry", args=[studio_data["sleeping"].pk]))
    assert fake_engine.retried == []
