"""Readout numbers, checked against the formulas computed by hand."""

from __future__ import annotations

import math

import pytest

from bench.experiments_seed import readout_seed
from journeys.definition import Goal, define_journey
from journeys.durations import days
from journeys.readouts import Group, compare, journey_readout

pytestmark = pytest.mark.django_db
Z_975 = 1.959963984540054  # the standard normal's 97.5th percentile


@define_journey(
    id="readout-demo",
    name="Readout demo",
    trigger="demo.start",
    holdout=0.2,
    goal=Goal("demo.bought", within=days(7)),
)
async def readout_demo(user, ctx):
    await ctx.variant("subject", ["plain", "bold"])


def _by_hand(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float, float, float]:
    """Difference, its 95 % Wald interval, and the pooled two-proportion z-test's p-value."""
    p1, p2 = c1 / n1, c2 / n2
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)  # unpooled, for the interval
    pooled = (c1 + c2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))  # pooled, under "no difference"
    z = diff / se0
    p_value = math.erfc(abs(z) / math.sqrt(2))  # two-sided: 2 * (1 - Phi(|z|))
    return diff, diff - Z_975 * se, diff + Z_975 * se, p_value


def test_the_readout_counts_arms_and_holdout_and_its_numbers_match_the_hand_computation(journey_register):
    journey_register(readout_demo)
    readout_seed(
        journey_id="readout-demo",
        version="aaaaaaaaaaaa",
        arms={"plain": (400, 60), "bold": (400, 80)},
        holdout=(200, 20),
    )
    readout_seed(
        journey_id="readout-demo",
        version="bbbbbbbbbbbb",
        arms={"plain": (10, 9), "bold": (10, 1)},
        prefix="other",
    )

    readout = journey_readout(journey=readout_demo, version="aaaaaaaaaaaa")

    assert (readout.treated.entrants, readout.treated.conversions) == (800, 140)
    assert (readout.holdout.entrants, readout.holdout.conversions) == (200, 20)
    (experiment,) = readout.experiments
    assert [(a.name, a.entrants, a.conversions) for a in experiment.arms] == [
        ("plain", 400, 60),
        ("bold", 400, 80),
    ]
    got = {(c.group, c.against): c for c in experiment.comparisons}
    assert set(got) == {("plain", "holdout"), ("bold", "holdout"), ("bold", "plain")}
    for (group, against), (c1, n1, c2, n2) in {
        ("bold", "plain"): (80, 400, 60, 400),
        ("bold", "holdout"): (80, 400, 20, 200),
        ("plain", "holdout"): (60, 400, 20, 200),
    }.items():
        diff, low, high, p_value = _by_hand(c1, n1, c2, n2)
        comparison = got[(group, against)]
        assert comparison.difference == pytest.approx(diff, abs=1e-12)
        assert (comparison.ci_low, comparison.ci_high) == (
            pytest.approx(low, abs=1e-9),
            pytest.approx(high, abs=1e-9),
        )
        assert comparison.p_value == pytest.approx(p_value, rel=1e-9)
        assert comparison.conclusive and comparison.warning == ""
    # bold against plain: 20 % vs 15 %, z = 0.05 / sqrt(0.175 * 0.825 * 2/400) = 1.8608..., p = 0.0628
    assert got[("bold", "plain")].p_value == pytest.approx(0.06277, abs=1e-4)
    treated = readout.against_holdout
    diff, low, high, p_value = _by_hand(140, 800, 20, 200)
    assert (treated.difference, treated.ci_low, treated.ci_high, treated.p_value) == pytest.approx(
        (diff, low, high, p_value)
    )
    # every version together, and the versions listed
    assert journey_readout(journey=readout_demo).everyone.entrants == 1020
    assert {v["version"] for v in readout.versions} == {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}


def test_a_readout_warns_while_the_sample_is_too_small_to_say(journey_register):
    journey_register(readout_demo)
    readout_seed(
        journey_id="readout-demo",
        version="cccccccccccc",
        arms={"plain": (30, 4), "bold": (30, 12)},
        holdout=(10, 0),
    )

    readout = journey_readout(journey=readout_demo, version="cccccccccccc")

    (experiment,) = readout.experiments
    got = {(c.group, c.against): c for c in experiment.comparisons}
    assert "too few conversions to say: plain has 4" in got[("bold", "plain")].warning
    assert not got[("bold", "plain")].conclusive
    assert "holdout has 0" in readout.against_holdout.warning
    assert got[("bold", "plain")].p_value is not None  # shown, but flagged


def test_a_comparison_where_nearly_everyone_converted_says_the_normal_approximation_fails(settings):
    settings.HOGSEND_READOUT_MIN_CONVERSIONS = 10
    result = compare(Group("b", 40, 38), Group("a", 40, 20))
    assert "normal approximation does not hold: b has 2 non-conversions" in result.warning
    nobody = compare(Group("b", 40, 0), Group("a", 40, 0))
    assert nobody.p_value is None and nobody.warning


def test_a_journey_without_a_goal_says_so(journey_register):
    @define_journey(id="readout-nogoal", name="No goal", trigger="demo.start")
    async def no_goal(user, ctx):
        pass

    journey_register(no_goal)
    readout = journey_readout(journey=no_goal)
    assert readout.holdout is None and readout.experiments == []
    assert any("names no goal" in w for w in readout.warnings)


def test_the_control_group_is_its_own_group_and_dilutes_no_arm_nor_the_treated(journey_register):
    journey_register(readout_demo)
    readout_seed(
        journey_id="readout-demo",
        version="dddddddddddd",
        arms={"plain": (300, 45), "bold": (300, 60)},
        holdout=(150, 15),
        control_group={"plain": (40, 4), "bold": (60, 6)},  # drew an arm, were sent nothing
    )

    readout = journey_readout(journey=readout_demo, version="dddddddddddd")

    assert (readout.treated.entrants, readout.treated.conversions) == (600, 105)
    assert (readout.holdout.entrants, readout.holdout.conversions) == (150, 15)
    assert (
        readout.control_group.name,
        readout.control_group.entrants,
        readout.control_group.conversions,
    ) == (
        "control group",
        100,
        10,
    )
    assert (readout.everyone.entrants, readout.everyone.conversions) == (850, 130)
    (experiment,) = readout.experiments
    assert [(a.name, a.entrants, a.conversions) for a in experiment.arms] == [
        ("plain", 300, 45),
        ("bold", 300, 60),
    ]
    got = {(c.group, c.against): c for c in experiment.comparisons}
    # bold 20 % against plain 15 % (not 66/360 against 49/340 with the control group mixed in)
    diff, low, high, p_value = _by_hand(60, 300, 45, 300)
    bold = got[("bold", "plain")]
    assert (bold.difference, bold.ci_low, bold.ci_high, bold.p_value) == pytest.approx(
        (diff, low, high, p_value)
    )
    assert bold.difference == pytest.approx(0.05, abs=1e-12)
    diff, low, high, p_value = _by_hand(105, 600, 15, 150)  # treated 17.5 % against holdout 10 %
    treated = readout.against_holdout
    assert (treated.difference, treated.ci_low, treated.ci_high, treated.p_value) == pytest.approx(
        (diff, low, high, p_value)
    )
    assert readout.as_dict()["controlGroup"] == {
        "name": "control group",
        "entrants": 100,
        "conversions": 10,
        "rate": 0.1,
    }
    # without control-group runs there is no such group
    assert journey_readout(journey=readout_demo, version="eeeeeeeeeeee").control_group is None
