from __future__ import annotations

import pytest

from contacts.models import AuditEntry, Event
from journeys.models import EnrollmentSkip, JourneyRun, RunStep
from journeys.registry import registry
from journeys.services import journey_is_enabled

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["items"]]


def test_runs_are_listed_newest_first_and_filter_by_journey_contact_status_and_node(admin, runs):
    assert ids(admin.get("/v1/admin/runs")) == [
        str(runs[k].pk) for k in ("waiting", "completed", "failed", "active")
    ]
    assert ids(admin.get("/v1/admin/runs?journey=churn-prevention")) == [
        str(runs["failed"].pk),
        str(runs["active"].pk),
    ]
    assert ids(admin.get("/v1/admin/runs?contact=ada")) == [str(runs["waiting"].pk), str(runs["active"].pk)]
    assert ids(admin.get(f"/v1/admin/runs?contact={runs['bob'].pk}&status=failed")) == [
        str(runs["failed"].pk)
    ]
    assert ids(admin.get("/v1/admin/runs?journey=activation-welcome&node=post-welcome")) == [
        str(runs["waiting"].pk)
    ]
    assert ids(admin.get("/v1/admin/runs?contact=nobody")) == []


def test_pages_follow_the_cursor_until_every_run_was_seen_once(admin, runs):
    seen, cursor = [], None
    while True:
        body = admin.get("/v1/admin/runs?limit=3" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4
    assert admin.get("/v1/admin/runs?cursor=nonsense").status_code == 422


def test_one_run_comes_with_its_step_log(admin, runs):
    run = runs["waiting"]
    RunStep.objects.create(
        run=run, seq=1, kind="send", label="welcome", result={"status": "sent"}, recorded_at=run.entered_at
    )
    RunStep.objects.create(
        run=run, seq=2, kind="sleep", label="post-welcome", result={}, recorded_at=run.entered_at
    )
    body = admin.get(f"/v1/admin/runs/{run.pk}").json()
    assert (body["status"], body["userId"], body["currentNode"]) == ("waiting", "ada", "post-welcome")
    assert [(s["seq"], s["kind"], s["label"]) for s in body["steps"]] == [
        (1, "send", "welcome"),
        (2, "sleep", "post-welcome"),
    ]
    assert admin.get("/v1/admin/runs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_cancel_exits_a_live_run_audits_it_and_stops_it_in_the_engine_after_commit(
    admin, runs, engine, django_capture_on_commit_callbacks
):
    run = runs["waiting"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/v1/admin/runs/{run.pk}/cancel")
        assert engine.cancelled == []  # nothing reaches the engine before the change commits
    assert response.status_code == 200
    assert (response.json()["run"]["status"], response.json()["run"]["exitReason"]) == (
        "exited",
        "cancelled_by_operator",
    )
    assert engine.cancelled == [run.pk]
    entry = AuditEntry.objects.get(action="run.cancel")
    assert (entry.target_id, entry.actor_label) == (
        str(run.pk),
        f"api key ops (hsk_{entry.actor_label.split('hsk_')[1]}",
    )


def test_cancel_refuses_a_run_that_already_ended(admin, runs, engine):
    response = admin.post(f"/v1/admin/runs/{runs['completed'].pk}/cancel")
    assert response.status_code == 409 and "completed" in response.json()["detail"]
    assert not AuditEntry.objects.exists()


def test_retry_puts_a_failed_run_back_to_active_and_asks_the_engine_to_replay_it(
    admin, runs, engine, django_capture_on_commit_callbacks
):
    run = runs["failed"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/v1/admin/runs/{run.pk}/retry")
    assert response.status_code == 202 and response.json()["run"]["status"] == "active"
    assert engine.retried == [run.pk]
    assert AuditEntry.objects.get(action="run.retry").target_id == str(run.pk)


def test_a_retry_the_engine_cannot_take_leaves_the_run_failed_with_the_reason(
    admin, runs, engine, monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(*, run_id):
        raise ConnectionError("engine down")

    monkeypatch.setattr(engine, "engine_retry_run", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"/v1/admin/runs/{runs['failed'].pk}/retry")
    run = JourneyRun.objects.get(pk=runs["failed"].pk)
    assert run.status == "failed" and "engine down" in run.error


def test_retry_refuses_a_run_that_did_not_fail(admin, runs, engine):
    assert admin.post(f"/v1/admin/runs/{runs['waiting'].pk}/retry").status_code == 409
    assert engine.retried == []


def test_disable_and_enable_switch_a_journey_and_are_audited(admin):
    journey = registry.get("activation-welcome")
    body = admin.post("/v1/admin/journeys/activation-welcome/disable").json()
    assert body["enabled"] is False and journey_is_enabled(journey=journey) is False
    assert admin.post("/v1/admin/journeys/activation-welcome/enable").json()["enabled"] is True
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "journey.disable",
        "journey.enable",
    ]
    assert admin.post("/v1/admin/journeys/nope/disable").status_code == 404
    listed = {j["id"]: j["enabled"] for j in admin.get("/v1/admin/journeys").json()}
    assert listed["activation-welcome"] is True


def test_enroll_emits_the_trigger_event_for_the_contact(admin, runs):
    response = admin.post(
        "/v1/admin/journeys/conversion-abandoned-checkout/enroll",
        {"contact": "ada", "properties": {"cart": 42}},
    )
    assert response.status_code == 202
    event = Event.objects.get(pk=response.json()["eventId"])
    assert (event.name, event.properties, event.source, event.contact_id) == (
        "checkout.abandoned",
        {"cart": 42},
        "system",
        runs["ada"].pk,
    )
    assert (
        AuditEntry.objects.get(action="contact.enroll").detail["journey_id"]
        == "conversion-abandoned-checkout"
    )
    assert (
        admin.post("/v1/admin/journeys/activation-welcome/enroll", {"contact": "nobody"}).status_code == 404
    )
    assert (
        admin.post("/v1/admin/journeys/activation-welcome/enroll", {"contact": "ada", "x": 1}).status_code
        == 422
    )


def test_an_enrolled_contact_enters_the_journey_unless_a_guard_says_no(admin, journey_harness):
    journey_harness.emit("noise", user_id="cy", email="cy@example.com")
    admin.post("/v1/admin/journeys/activation-welcome/disable")
    admin.post("/v1/admin/journeys/activation-welcome/enroll", {"contact": "cy"})
    journey_harness.emit("noise", user_id="cy")  # lets the simulated engine route what is queued
    assert list(EnrollmentSkip.objects.values_list("reason", flat=True)) == ["journey_disabled"]

    admin.post("/v1/admin/journeys/activation-welcome/enable")
    admin.post("/v1/admin/journeys/activation-welcome/enroll", {"contact": "cy"})
    journey_harness.emit("noise", user_id="cy")
    assert journey_harness.run("activation-welcome", "cy") is not None


def test_a_retried_run_replays_from_the_top_without_sending_twice(admin, journey_harness):
    from journeys.durations import days
    from journeys.services import run_fail

    run = journey_harness.start("activation-welcome", user_id="ada", email="ada@example.com")
    journey_harness.crash(run)  # the worker died mid-sleep and the engine gave up on it
    run_fail(run_id=run.pk, error="WorkerLost")

    assert admin.post(f"/v1/admin/runs/{run.pk}/retry").status_code == 202
    run.refresh_from_db()
    assert run.is_live
    assert [(journey, label) for journey, label, _ in journey_harness.parked()] == [
        ("activation-welcome", "post-welcome")
    ]
    journey_harness.advance(days(2))
    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome", "activation/nudge"]


def test_a_cancelled_run_sends_nothing_more(admin, journey_harness):
    from journeys.durations import days

    run = journey_harness.start("activation-welcome", user_id="ada", email="ada@example.com")
    assert admin.post(f"/v1/admin/runs/{run.pk}/cancel").status_code == 200
    assert journey_harness.parked() == []
    journey_harness.advance(days(3))
    assert journey_harness.templates_sent_to("ada@example.com") == ["activation/welcome"]


def test_the_readout_endpoint_answers_per_version_and_refuses_a_malformed_version(admin, journey_register):
    from bench.experiments_seed import readout_seed
    from journeys.definition import Goal, define_journey
    from journeys.durations import days

    @define_journey(
        id="api-readout",
        name="API readout",
        trigger="x.start",
        holdout=0.1,
        goal=Goal("x.done", within=days(3)),
    )
    async def api_readout(user, ctx):
        pass

    journey_register(api_readout)
    readout_seed(
        journey_id="api-readout",
        version="0123456789ab",
        arms={"a": (50, 15), "b": (50, 25)},
        holdout=(20, 2),
        control_group={"a": (6, 1), "b": (4, 1)},
    )

    body = admin.get("/v1/admin/journeys/api-readout/readout?version=0123456789ab").json()
    assert body["version"] == "0123456789ab" and body["goal"] == {"event": "x.done", "within": "3d"}
    assert body["treated"] == {"name": "treated", "entrants": 100, "conversions": 40, "rate": 0.4}
    assert body["holdout"]["entrants"] == 20
    assert body["controlGroup"] == {"name": "control group", "entrants": 10, "conversions": 2, "rate": 0.2}
    assert body["everyone"]["entrants"] == 130
    (experiment,) = body["experiments"]
    assert [a["name"] for a in experiment["arms"]] == ["a", "b"]
    b_vs_a = next(c for c in experiment["comparisons"] if (c["group"], c["against"]) == ("b", "a"))
    assert b_vs_a["difference"] == pytest.approx(0.2) and b_vs_a["ciLow"] < 0.2 < b_vs_a["ciHigh"]
    assert b_vs_a["conclusive"] and 0 < b_vs_a["pValue"] < 0.05
    assert not body["againstHoldout"]["conclusive"] and "holdout has 2" in body["againstHoldout"]["warning"]
    assert (
        admin.get("/v1/admin/journeys/api-readout/readout?version=ffffffffffff").json()["everyone"][
            "entrants"
        ]
        == 0
    )
    bad = admin.get("/v1/admin/journeys/api-readout/readout?version=not-a-version")
    assert bad.status_code == 422 and "version" in bad.text
    assert admin.get("/v1/admin/journeys/nope/readout").status_code == 404
    runs = admin.get("/v1/admin/runs?journey=api-readout&version=0123456789ab&limit=500").json()["items"]
    assert len(runs) == 130 and sum(r["heldOut"] for r in runs) == 20
