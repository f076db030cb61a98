from __future__ import annotations

import pytest

from journeys.definition import EntryLimit, JourneyDefinitionError, define_journey, on
from journeys.durations import Duration, days, hours, journey_time, minutes, seconds
from journeys.registry import JourneyRegistry
from journeys.shipped.constants import Events, Templates


async def noop(user, ctx):
    return None


def test_durations_are_plain_spans_of_time():
    assert days(3) == hours(72)
    assert minutes(30).seconds == 1800
    assert seconds(5) + minutes(1) == Duration(65)
    assert str(days(2)) == "2d" and str(hours(12)) == "12h"


def test_time_compression_scales_every_journey_duration(settings):
    settings.HOGSEND_TIME_SCALE = 86400
    assert journey_time(days(2)).total_seconds() == 2
    settings.HOGSEND_TIME_SCALE = 1
    assert journey_time(days(2)).total_seconds() == 172800


def test_define_journey_keeps_the_meta():
    journey = define_journey(
        id="welcome",
        name="Welcome",
        trigger=on("user.created", where=lambda b: b.prop("plan").eq("pro")),
        entry_limit="once_per_period",
        entry_period=days(7),
        exit_on=[
            "user.deleted",
            on("plan.changed", where=[{"property": "plan", "operator": "eq", "value": "free"}]),
        ],
        suppress=hours(12),
        category="onboarding",
    )(noop)

    assert journey.entry_limit is EntryLimit.ONCE_PER_PERIOD
    assert journey.trigger.matches("user.created", {"plan": "pro"})
    assert not journey.trigger.matches("user.created", {"plan": "free"})
    assert journey.exit_rule_for("plan.changed", {"plan": "free"}) is not None
    assert journey.exit_rule_for("plan.changed", {"plan": "pro"}) is None
    assert journey.category == "onboarding"


def test_once_per_period_needs_a_period():
    with pytest.raises(JourneyDefinitionError, match="needs an entry_period"):
        define_journey(id="x", name="x", trigger="e", entry_limit="once_per_period")


def test_an_unknown_entry_limit_is_refused():
    with pytest.raises(JourneyDefinitionError, match="once, once_per_period, unlimited"):
        define_journey(id="x", name="x", trigger="e", entry_limit="twice")


def test_the_run_function_must_be_async():
    with pytest.raises(JourneyDefinitionError, match="async def"):
        define_journey(id="x", name="x", trigger="e")(lambda user, ctx: None)


def test_enabled_journeys_filters_the_registry(settings):
    reg = JourneyRegistry()
    a = define_journey(id="a", name="A", trigger="e")(noop)
    b = define_journey(id="b", name="B", trigger="e")(noop)
    reg.register(a, b)

    settings.ENABLED_JOURNEYS = "*"
    assert [j.id for j in reg.loaded()] == ["a", "b"]
    settings.ENABLED_JOURNEYS = "b, c"
    assert [j.id for j in reg.loaded()] == ["b"]
    assert [j.id for j in reg.triggered_by("e")] == ["b"]
    assert [j.id for j in reg.all()] == ["a", "b"]


def test_two_journeys_cannot_share_an_id():
    reg = JourneyRegistry()
    reg.register(define_journey(id="a", name="A", trigger="e")(noop))
    with pytest.raises(JourneyDefinitionError, match="share the id"):
        reg.register(define_journey(id="a", name="A2", trigger="e")(noop))


def test_constants_name_events_and_templates():
    assert Events.USER_CREATED == "user.created"
    assert Templates.ACTIVATION_WELCOME == "activation/welcome"


def test_the_startup_check_catches_an_unknown_template(register):
    from journeys.checks import journey_templates_exist

    assert journey_templates_exist() == []

    from journeys.send import send_email

    @define_journey(id="typo", name="Typo", trigger="e")
    async def typo(user, ctx):
        await send_email(to=user.email, template="activation/welcom")

    register(typo)
    errors = journey_templates_exist()
    assert [e.id for e in errors] == ["hogsend.E001"]
    assert "activation/welcom" in errors[0].msg
