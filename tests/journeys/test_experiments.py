"""Variants, holdouts and goals on the virtual-time harness."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from contacts.ingest import EventDraft, events_ingest
from emails.models import EmailLog
from journeys.definition import Goal, JourneyDefinitionError, define_journey
from journeys.durations import days
from journeys.experiments import is_held_out, variant_arms_check, variant_pick
from journeys.models import GoalConversion, JourneyRun, RunStep, VariantExposure
from journeys.send import send_email

WELCOME, NUDGE, ADVANCED = "activation/welcome", "activation/nudge", "activation/advanced"


@define_journey(id="exp-subject", name="Subject test", trigger="exp.start", entry_limit="unlimited")
async def subject_test(user, ctx):
    arm = await ctx.variant("subject", ["plain", "bold"])
    await send_email(to=user.email, user_id=user.id, template=WELCOME if arm == "plain" else ADVANCED)
    await ctx.sleep(days(1), label="pause")
    again = await ctx.variant("subject", ["plain", "bold"])
    await send_email(to=user.email, user_id=user.id, template=NUDGE, props={"arm": again})


@define_journey(
    id="exp-holdout",
    name="Holdout test",
    trigger="exp.hold",
    holdout=0.5,
    goal=Goal("exp.bought", where=lambda b: b.prop("value").gt(10), within=days(7)),
)
async def holdout_test(user, ctx):
    await ctx.variant("offer", ["none", "discount"], weights=[1, 1])
    await send_email(to=user.email, user_id=user.id, template=WELCOME)
    await ctx.sleep(days(1), label="between")
    await send_email(to=user.email, user_id=user.id, template=NUDGE)


def _users(n: int) -> list[str]:
    return [f"user-{i}" for i in range(n)]


# --- variants ----------------------------------------------------------------------------------


def test_the_same_contact_always_gets_the_same_arm_and_arms_split_by_their_weights():
    arms, shares = variant_arms_check("k", ["a", "b", "c"], [2, 1, 1])
    picks = Counter(
        variant_pick(journey_id="j", key="k", contact_id=f"c{i}", arms=arms, shares=shares)
        for i in range(4000)
    )
    assert all(
        variant_pick(journey_id="j", key="k", contact_id=f"c{i}", arms=arms, shares=shares)
        == variant_pick(journey_id="j", key="k", contact_id=f"c{i}", arms=arms, shares=shares)
        for i in range(50)
    )
    assert 1850 < picks["a"] < 2150 and 850 < picks["b"] < 1150 and 850 < picks["c"] < 1150
    # another key (or journey) shuffles contacts anew, independently of this one
    other = [
        variant_pick(journey_id="j", key="k2", contact_id=f"c{i}", arms=arms, shares=shares)
        for i in range(200)
    ]
    same = [
        variant_pick(journey_id="j", key="k", contact_id=f"c{i}", arms=arms, shares=shares)
        for i in range(200)
    ]
    assert other != same


@pytest.mark.parametrize(
    ("arms", "weights", "message"),
    [
        (["only"], None, "at least two arms"),
        ("ab", None, "list of names"),
        (["a", "a"], None, "unique"),
        (["a", ""], None, "non-empty name"),
        (["a", "b"], [1], "one weight per arm"),
        (["a", "b"], [1, -1], "at least 0"),
        (["a", "b"], [0, 0], "above 0"),
        (["a", "b"], [1, float("nan")], "finite"),
        (["a", "b"], [True, 1], "finite numbers"),
    ],
)
def test_bad_arms_or_weights_are_a_value_error_saying_what_to_change(arms, weights, message):
    with pytest.raises(ValueError, match=message):
        variant_arms_check("subject", arms, weights)


def test_a_variant_is_recorded_once_per_run_and_key_and_its_arm_picks_the_email(journey_harness, register):
    register(subject_test)
    for user in _users(6):
        journey_harness.start("exp-subject", user_id=user)
    journey_harness.advance(days(1))

    for user in _users(6):
        run = journey_harness.run("exp-subject", user)
        exposure = VariantExposure.objects.get(run=run)
        assert (exposure.journey_id, exposure.key, exposure.version) == (
            "exp-subject",
            "subject",
            run.version,
        )
        expected = WELCOME if exposure.arm == "plain" else ADVANCED
        assert journey_harness.templates_sent_to(f"{user}@example.com") == [expected, NUDGE]
        nudge = EmailLog.objects.get(run=run, template=NUDGE)
        assert nudge.props == {"arm": exposure.arm}  # the second call with the same key: the same arm
        kinds = list(
            RunStep.objects.filter(run=run, kind=RunStep.Kind.VARIANT).values_list("label", "result")
        )
        assert kinds == [("subject", {"arm": exposure.arm})] * 2


def test_a_replay_returns_the_recorded_arm_even_after_the_weights_changed(journey_harness, register):
    register(subject_test)
    run = journey_harness.start("exp-subject", user_id="ada")
    first = VariantExposure.objects.get(run=run).arm
    flipped = "bold" if first == "plain" else "plain"

    @define_journey(id="exp-subject", name="Subject test", trigger="exp.start", entry_limit="unlimited")
    async def subject_test_reweighted(user, ctx):
        arm = await ctx.variant(
            "subject", ["plain", "bold"], weights=[1, 0] if flipped == "plain" else [0, 1]
        )
        await send_email(to=user.email, user_id=user.id, template=WELCOME if arm == "plain" else ADVANCED)
        await ctx.sleep(days(1), label="pause")
        again = await ctx.variant(
            "subject", ["plain", "bold"], weights=[1, 0] if flipped == "plain" else [0, 1]
        )
        await send_email(to=user.email, user_id=user.id, template=NUDGE, props={"arm": again})

    journey_harness.deploy(subject_test_reweighted)  # the parked run replays from the top on new weights
    journey_harness.replay(run)
    journey_harness.advance(days(1))

    assert VariantExposure.objects.filter(run=run).count() == 1
    assert EmailLog.objects.get(run=run, template=NUDGE).props == {"arm": first}
    assert len(journey_harness.emails("ada@example.com")) == 2  # no second first email
    # a new contact's arm follows the new weights
    journey_harness.start("exp-subject", user_id="bob")
    assert VariantExposure.objects.get(run=journey_harness.run("exp-subject", "bob")).arm == flipped


# --- holdouts ----------------------------------------------------------------------------------


def test_holdout_runs_go_on_but_are_never_sent_to_and_the_rest_are(journey_harness, register):
    register(holdout_test)
    users = _users(40)
    for user in users:
        journey_harness.start("exp-holdout", user_id=user)
    journey_harness.advance(days(2))

    runs = {user: journey_harness.run("exp-holdout", user) for user in users}
    held = [u for u, r in runs.items() if r.held_out]
    assert 8 <= len(held) <= 32  # about half, deterministic per contact
    for user, run in runs.items():
        assert run.held_out == is_held_out(journey=holdout_test, contact_id=run.contact_id)
        assert run.status == JourneyRun.Status.COMPLETED  # a held-out run goes on to its end
        logs = journey_harness.emails(f"{user}@example.com")
        assert [log.template for log in logs] == [WELCOME, NUDGE]
        if run.held_out:
            assert {(log.status, log.status_reason) for log in logs} == {("skipped", "held_out")}
            assert all(log.sent_at is None for log in logs)
        else:
            assert journey_harness.templates_sent_to(f"{user}@example.com") == [WELCOME, NUDGE]


def test_holdout_must_be_a_share_below_one_and_never_on_transactional_journeys():
    async def run(user, ctx):
        pass

    for bad in (1, 1.5, -0.1, "10%", True, float("nan")):
        with pytest.raises(JourneyDefinitionError, match="holdout"):
            define_journey(id="bad", name="bad", trigger="x", holdout=bad)(run)
    with pytest.raises(JourneyDefinitionError, match="transactional"):
        define_journey(id="bad", name="bad", trigger="x", holdout=0.1, category="transactional")(run)
    with pytest.raises(JourneyDefinitionError, match="positive duration"):
        Goal("x", within=days(0))


# --- goals -------------------------------------------------------------------------------------


def test_a_goal_event_within_the_window_converts_the_run_once_with_its_arm_and_holdout_flag(
    journey_harness, register
):
    register(holdout_test)
    users = _users(10)
    for user in users:
        journey_harness.start("exp-holdout", user_id=user)
    journey_harness.advance(days(2))
    journey_harness.emit("exp.bought", user_id="user-0", properties={"value": 50})
    journey_harness.emit("exp.bought", user_id="user-0", properties={"value": 60})  # one conversion per run
    journey_harness.emit("exp.bought", user_id="user-1", properties={"value": 5})  # where does not match
    journey_harness.emit("exp.other", user_id="user-2")
    journey_harness.advance(days(6))  # user-3 buys 8 days after entry: outside the 7-day window
    journey_harness.emit("exp.bought", user_id="user-3", properties={"value": 50})
    journey_harness.emit(
        "exp.bought", user_id="user-4", properties={"value": 50}, at=-timedelta(days=7.5)
    )  # late, in time

    converted = GoalConversion.objects.select_related("run__contact")
    assert sorted(c.run.contact.user_id for c in converted) == ["user-0", "user-4"]
    first = converted.get(run__contact__user_id="user-0")
    assert first.event.properties == {"value": 50}
    run = journey_harness.run("exp-holdout", "user-0")
    assert first.run == run and first.journey_id == "exp-holdout"
    assert VariantExposure.objects.filter(run=run).count() == 1  # its arm is the run's exposure


def test_a_goal_event_stored_in_the_same_batch_as_the_trigger_converts_the_run(journey_harness, register):
    register(holdout_test)
    events_ingest(
        drafts=[
            EventDraft(name="exp.hold", user_id="ada", email="ada@example.com"),
            EventDraft(name="exp.bought", user_id="ada", properties={"value": 99}),
        ]
    )
    assert GoalConversion.objects.filter(run=journey_harness.run("exp-holdout", "ada")).count() == 1


def test_a_goal_event_from_before_the_trigger_does_not_convert(journey_harness, register):
    register(holdout_test)
    journey_harness.emit("exp.bought", user_id="ada", properties={"value": 99})
    journey_harness.advance(days(1))
    journey_harness.start("exp-holdout", user_id="ada")
    assert not GoalConversion.objects.exists()


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.parametrize("events", [1, 50])
def test_goal_events_cost_ingest_two_statements_per_batch_and_other_events_none(
    journey_harness, register, events
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations import lifecycle as integrations_lifecycle

    register(holdout_test)
    users = _users(events)
    for user in users:
        journey_harness.start("exp-holdout", user_id=user)

    def cost(name: str) -> int:
        drafts = [EventDraft(name=name, user_id=u, properties={"value": 50}) for u in users]
        integrations_lifecycle._nobody_listens.clear()
        with CaptureQueriesContext(connection) as captured:
            events_ingest(drafts=drafts, dispatch=False)
        return len(_statements(captured))

    plain = cost("exp.viewed")
    assert cost("exp.bought") == plain + 2  # the contacts' row locks, then the attribution
    assert GoalConversion.objects.count() == events


# --- the global control group ------------------------------------------------------------------


def test_a_run_is_marked_in_the_control_group_at_enrollment_and_its_sends_follow_that(
    journey_harness, register, settings
):
    from emails.control_group import in_control_group
    from journeys.readouts import journey_readout

    settings.HOGSEND_CONTROL_GROUP_PERCENT = 30
    settings.HOGSEND_CONTROL_GROUP_SALT = "readout-test"
    register(holdout_test)
    users = _users(60)
    for user in users:
        journey_harness.start("exp-holdout", user_id=user)
    runs = {user: journey_harness.run("exp-holdout", user) for user in users}
    for user in users[::2]:  # every other contact converts
        journey_harness.emit("exp.bought", user_id=user, properties={"value": 50})
    # A new salt draws a new group, but a run keeps what it enrolled with.
    settings.HOGSEND_CONTROL_GROUP_SALT = "another-draw"
    journey_harness.advance(days(2))

    kinds: dict[str, str] = {}
    for user, run in runs.items():
        held = is_held_out(journey=holdout_test, contact_id=run.contact_id)
        settings.HOGSEND_CONTROL_GROUP_SALT = "readout-test"
        control = not held and in_control_group(contact_id=run.contact_id)
        settings.HOGSEND_CONTROL_GROUP_SALT = "another-draw"
        assert (run.held_out, run.control_group) == (held, control)
        kinds[user] = "holdout" if held else "control" if control else "treated"
        reasons = {(log.status, log.status_reason) for log in journey_harness.emails(f"{user}@example.com")}
        assert (
            reasons
            == {
                "holdout": {("skipped", "held_out")},
                "control": {("skipped", "control_group")},
                "treated": {("sent", "")},
            }[kinds[user]]
        ), user
    assert set(kinds.values()) == {"holdout", "control", "treated"}

    # The readout counts by hand: each kind's runs and the converted (even-numbered) ones.
    converted = set(users[::2])
    expected = {
        kind: (sum(1 for u in users if kinds[u] == kind), sum(1 for u in converted if kinds[u] == kind))
        for kind in ("treated", "holdout", "control")
    }
    readout = journey_readout(journey=holdout_test)
    assert (readout.treated.entrants, readout.treated.conversions) == expected["treated"]
    assert (readout.holdout.entrants, readout.holdout.conversions) == expected["holdout"]
    assert (readout.control_group.entrants, readout.control_group.conversions) == expected["control"]
    (experiment,) = readout.experiments
    assert sum(a.entrants for a in experiment.arms) == expected["treated"][0]
    assert sum(a.conversions for a in experiment.arms) == expected["treated"][1]


def test_a_transactional_journeys_runs_are_never_in_the_control_group(journey_harness, register, settings):
    settings.HOGSEND_CONTROL_GROUP_PERCENT = 100

    @define_journey(id="exp-receipt", name="Receipt", trigger="exp.paid", category="transactional")
    async def receipt(user, ctx):
        await send_email(to=user.email, user_id=user.id, template=WELCOME)

    register(receipt)
    run = journey_harness.start("exp-receipt", user_id="ada")
    assert run.control_group is False
    assert journey_harness.templates_sent_to("ada@example.com") == [WELCOME]
