"""`manage.py journeys_check`: a real code change to a journey module, caught before the deploy.

A journey module is written to disk, runs are parked on it, the module is changed and reloaded as
a deploy would, and the command reports what would break and exits non-zero. Each way out is then
taken, and the harness (playing the engine) shows that the verdict was right.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import textwrap

import pytest
from django.core.management import call_command

from contacts.models import AuditEntry
from journeys.durations import days
from journeys.models import JourneyRun
from journeys.registry import registry
from journeys.versions import journey_version

V1 = """
from journeys.definition import define_journey
from journeys.durations import days
from journeys.send import send_email
from journeys.shipped.constants import Templates


class Events:
    STARTED = "demo.started"
    PAID = "demo.paid"


@define_journey(id="deploy-demo", name="Deploy demo", trigger=Events.STARTED)
async def deploy_demo(user, ctx):
    plan = user.properties.get("plan")
    await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)
    if plan == "pro":
        await ctx.wait_for_event(Events.PAID, timeout=days(3), label="await-payment")
    elif plan == "team":
        await ctx.sleep(days(2), label="team-pause")
    else:
        await ctx.sleep(days(2), label="cool-off")
    await send_email(to=user.email, template=Templates.ACTIVATION_NUDGE)


JOURNEYS = [deploy_demo]
"""

# The deploy: the wait is renamed, team plans get another first email, free plans a checkpoint.
V2 = (
    V1.replace('label="await-payment"', 'label="payment-wait"')
    .replace(
        "template=Templates.ACTIVATION_WELCOME)",
        'template=Templates.ACTIVATION_ADVANCED if plan == "team" else Templates.ACTIVATION_WELCOME)',
    )
    .replace(
        '        await ctx.sleep(days(2), label="cool-off")',
        '        await ctx.checkpoint("free-plan")\n        await ctx.sleep(days(2), label="cool-off")',
    )
)


# The same deploy, keeping version 1 in the module (a copy under another name) for the runs on it.
_V1_FUNCTION = V1[V1.index("@define_journey") : V1.index("JOURNEYS = ")]
V2_KEEPING_V1 = (
    V2
    + "\n"
    + _V1_FUNCTION.replace("async def deploy_demo(", "async def deploy_demo_v1(")
    + "KEPT_VERSIONS = [deploy_demo_v1]\n"
)


@pytest.fixture
def demo_module(tmp_path, monkeypatch):
    """A journey module on disk, and a way to ship a new version of it: rewrite it and load it again,
    as the processes of a deploy do (the registry then holds the new definition)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "deploy_demo_journeys.py"
    path.write_text(textwrap.dedent(V1))
    module = importlib.import_module("deploy_demo_journeys")

    def ship(source: str):
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        reloaded = importlib.reload(module)
        journey = reloaded.deploy_demo
        registry.unregister(journey.id)
        registry.register(journey)
        registry.keep(*getattr(reloaded, "KEPT_VERSIONS", ()))
        return journey

    yield module, ship
    sys.modules.pop("deploy_demo_journeys", None)


def check(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("journeys_check", "deploy-demo", "--json", *args, stdout=out)
        code = 0
    except SystemExit as stop:
        code = stop.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def parked(journey_harness, register, demo_module):
    """Three runs parked on version 1: a pro plan waiting for payment, a team and a free plan asleep."""
    module, ship = demo_module
    register(module.deploy_demo)
    for user, plan in [("pro", "pro"), ("team", "team"), ("free", "free")]:
        journey_harness.emit(
            "demo.started", user_id=user, email=f"{user}@example.com", properties={"plan": plan}
        )
    runs = {user: journey_harness.run("deploy-demo", user) for user in ("pro", "team", "free")}
    assert {u: r.current_node for u, r in runs.items()} == {
        "pro": "await-payment",
        "team": "team-pause",
        "free": "cool-off",
    }
    return module, ship, runs


def by_user(report: dict) -> dict[str, str]:
    (journey,) = report["journeys"]
    return {run["user_id"]: run["outcome"] for run in journey["runs"]}


def test_runs_record_their_journeys_version_at_enrollment(parked):
    module, ship, runs = parked
    version = journey_version(module.deploy_demo)
    assert len(version) == 12
    assert {r.version for r in runs.values()} == {version}
    # The same code read again (a restart, another process) is the same version; a change is not.
    assert journey_version(ship(V1)) == version
    assert journey_version(ship(V2)) != version


def test_an_unchanged_journey_passes(parked):
    code, report = check("--no-lint")
    assert code == 0
    (journey,) = report["journeys"]
    assert journey["counts"]["ok"] == 3 and report["breaking_runs"] == 0


def test_a_code_change_is_caught_run_by_run_and_the_check_fails(parked, journey_harness):
    _, ship, runs = parked
    ship(V2)
    old_version = runs["pro"].version
    code, report = check()
    assert code == 1
    assert by_user(report) == {"pro": "label_gone", "team": "new_path", "free": "nondeterministic"}
    (journey,) = report["journeys"]
    assert journey["older_versions"] == 3 and journey["version"] != old_version
    details = {run["user_id"]: run["detail"] for run in journey["runs"]}
    assert "'await-payment'" in details["pro"] and "'payment-wait'" in details["pro"]
    assert "'activation/advanced'" in details["team"]
    assert "step 2 was a sleep" in details["free"] and "checkpoint now" in details["free"]

    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("journeys_check", "deploy-demo", stdout=out)
    text = out.getvalue()
    assert "BREAKS nondeterministic" in text and "BREAKS label_gone" in text and "note new_path" in text
    assert "2 would break" in text


def test_the_check_is_what_the_engine_does_when_the_new_code_replays(parked, journey_harness):
    _, ship, runs = parked
    journey_harness.deploy(ship(V2))
    status = {u: JourneyRun.objects.get(pk=r.pk) for u, r in runs.items()}
    assert status["free"].status == "failed" and "NonDeterministicJourney" in status["free"].error
    assert status["team"].status == "waiting"  # a new path, accepted
    assert status["pro"].status == "waiting" and status["pro"].current_node == "await-payment"


def test_end_the_broken_runs_with_a_reason(parked, journey_harness):
    _, ship, runs = parked
    ship(V2)
    code, report = check("--end-broken", "welcome series rewritten")
    assert code == 0, report
    assert any("ended 2 runs" in note for note in report["actions"])
    for user in ("pro", "free"):
        run = JourneyRun.objects.get(pk=runs[user].pk)
        assert (run.status, run.exit_reason) == ("exited", "welcome series rewritten")
    assert JourneyRun.objects.get(pk=runs["team"].pk).status == "waiting"
    assert AuditEntry.objects.filter(action="run.end_for_deploy").count() == 2
    # The engine stopped them: time passes, and only the run left alive sends its next email.
    journey_harness.emit("demo.paid", user_id="pro")
    journey_harness.advance(days(3))
    assert journey_harness.templates_sent_to("pro@example.com") == ["activation/welcome"]
    assert journey_harness.templates_sent_to("free@example.com") == ["activation/welcome"]
    assert journey_harness.templates_sent_to("team@example.com")[-1] == "activation/nudge"


def test_map_a_renamed_wait_label(parked, journey_harness):
    _, ship, runs = parked
    new = ship(V2)
    code, report = check("--map-label", "deploy-demo", "await-payment", "payment-wait")
    assert any("mapped 1 runs" in note for note in report["actions"])
    assert "pro" not in by_user(report)  # ok now: only non-ok runs are listed
    mapped = JourneyRun.objects.get(pk=runs["pro"].pk)
    assert (mapped.current_node, mapped.map_node) == ("payment-wait", "wait:payment-wait")
    assert code == 1  # the free plan still breaks
    # On the new code the mapped run waits at its new label and wakes on the payment.
    journey_harness.deploy(new)
    journey_harness.advance(days(1))
    journey_harness.emit("demo.paid", user_id="pro")
    run = JourneyRun.objects.get(pk=runs["pro"].pk)
    assert run.status == "completed"
    assert journey_harness.templates_sent_to("pro@example.com") == ["activation/welcome", "activation/nudge"]


def test_a_mapping_needs_two_different_labels(parked):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="different"):
        call_command("journeys_check", "--map-label", "deploy-demo", "cool-off", "cool-off")


def test_an_unknown_journey_is_refused_with_the_known_ones(parked):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="known: "):
        call_command("journeys_check", "nope")


def test_the_lint_names_what_goes_wrong_in_production(db, register, monkeypatch):
    from contacts import categories
    from contacts.categories import Category, register_category

    # The category this test registers must not outlive it (later tests count the categories).
    monkeypatch.setattr(categories, "_categories", dict(categories._categories))
    from journeys.definition import define_journey
    from journeys.journey_lint import journey_lint
    from journeys.send import send_email
    from journeys.shipped.constants import Events, Templates

    @define_journey(
        id="lint-demo", name="Lint demo", trigger=Events.USER_CREATED, exit_on=[Events.MEETING_BOOKED]
    )
    async def lint_demo(user, ctx):
        await ctx.wait_for_event(Events.MEETING_BOOKED, timeout=days(2))
        await ctx.wait_for_event("user.activatd", timeout=None)
        await ctx.history.has_event(user.id, Events.FEATURE_USED)
        await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)

    findings = {(f.code, f.severity) for f in journey_lint(register(lint_demo))}
    assert findings == {
        ("awaited_exit_event", "warn"),
        ("unknown_event", "warn"),
        ("wait_without_timeout", "error"),
        ("send_without_category", "warn"),
    }
    (unknown,) = [f for f in journey_lint(lint_demo) if f.code == "unknown_event"]
    assert "'user.activatd'" in unknown.message and unknown.line is not None

    register_category(Category(id="lint-tips", name="Tips"))

    @define_journey(id="lint-clean", name="Lint clean", trigger=Events.USER_CREATED, category="lint-tips")
    async def lint_clean(user, ctx):
        await ctx.wait_for_event(Events.USER_ACTIVATED, timeout=days(2))
        await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)

    assert journey_lint(register(lint_clean)) == []

    @define_journey(id="lint-typo", name="Lint typo", trigger="user.craeted", category="no-such-kind")
    async def lint_typo(user, ctx):
        await send_email(to=user.email, template=Templates.ACTIVATION_WELCOME)

    codes = {(f.code, f.severity) for f in journey_lint(register(lint_typo))}
    assert codes == {("unknown_event", "warn"), ("send_without_category", "error")}


def test_lint_findings_fail_the_check_only_when_strict(parked):
    code, report = check()
    assert code == 0 and report["lint_findings"] == 1
    assert check("--strict")[0] == 2


def test_runworker_logs_the_same_summary_when_it_starts(parked, caplog, settings):
    import logging

    from journeys.deploy_check import journeys_check_log

    _, ship, _ = parked
    ship(V2)
    settings.ENABLED_JOURNEYS = "deploy-demo"
    with caplog.at_level(logging.INFO, logger="journeys.deploy_check"):
        report = journeys_check_log(logging.getLogger("journeys.deploy_check"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(report.breaking) == 2
    assert warnings == [
        "journeys_check: deploy-demo: 2 live runs would break (label_gone 1, nondeterministic 1); "
        "run `manage.py journeys_check deploy-demo`",
        "journeys_check: 3 live runs, 2 would break (deploy-demo 2); 0 lint findings",
    ]


def test_runs_finish_on_the_version_they_started_with_when_the_code_keeps_it(parked, journey_harness):
    module, ship, runs = parked
    v1 = journey_version(module.deploy_demo)
    new = ship(V2_KEEPING_V1)
    code, report = check("--no-lint")
    assert code == 0, report
    (journey,) = report["journeys"]
    assert journey["counts"]["ok"] == 3 and journey["kept_versions"] == {v1: 3}

    # The new code replays the parked runs on version 1; a new run takes version 2.
    journey_harness.deploy(new)
    journey_harness.emit(
        "demo.started", user_id="late", email="late@example.com", properties={"plan": "free"}
    )
    journey_harness.advance(days(3))
    for user in ("pro", "team", "free"):
        run = JourneyRun.objects.get(pk=runs[user].pk)
        assert run.status == "completed", (user, run.error)
        assert journey_harness.templates_sent_to(f"{user}@example.com") == [
            "activation/welcome",
            "activation/nudge",
        ]
    late = journey_harness.run("deploy-demo", "late")
    assert late.version == journey_version(new) != v1
    assert "free-plan" in [step.label for step in late.steps.all()]

    # No live run is left on version 1: the check says it can go.
    out = io.StringIO()
    call_command("journeys_check", "deploy-demo", stdout=out)
    assert f"kept version {v1}: no live run left on it: it can go" in out.getvalue()
