"""Readouts: did a journey (or an arm of it) lift its goal's conversion, and can we say so yet?

For one journey (and optionally one version) it counts entrants and conversions per arm of each
`ctx.variant` key and for the holdout, and compares each arm with the holdout and with the first
arm (the baseline): the difference in conversion rate with its 95 % confidence interval (Wald,
unpooled) and the two-sided p-value of the pooled two-proportion z-test, both from statsmodels.
A comparison is only conclusive when both groups have at least `HOGSEND_READOUT_MIN_CONVERSIONS`
conversions and at least 5 non-conversions (where the z-test's normal approximation holds); until
then it carries a warning saying what is missing. Runs enrolled in the global control group
(`HOGSEND_CONTROL_GROUP_PERCENT`: their marketing sends were skipped) got no treatment, so they
are neither treated nor in any arm: they are a group of their own. Held-out runs are the holdout
whether or not their contact is in the control group. Three grouped queries, at any number of runs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Min

from journeys.definition import Journey
from journeys.models import JourneyRun, VariantExposure

CONFIDENCE = 0.95
MIN_OUTCOMES_FOR_NORMAL = 5  # successes and failures per group for the z-test's approximation


@dataclass(frozen=True)
class Group:
    name: str
    entrants: int
    conversions: int

    @property
    def rate(self) -> float | None:
        return self.conversions / self.entrants if self.entrants else None

    def rate_interval(self) -> tuple[float, float] | None:
        """The group's own 95 % interval (Wilson), for the chart's whiskers."""
        if not self.entrants:
            return None
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(self.conversions, self.entrants, alpha=1 - CONFIDENCE, method="wilson")
        return float(low), float(high)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entrants": self.entrants,
            "conversions": self.conversions,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class Comparison:
    group: str
    against: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    warning: str = ""

    @property
    def conclusive(self) -> bool:
        return not self.warning and self.p_value is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "against": self.against,
            "difference": self.difference,
            "ciLow": self.ci_low,
            "ciHigh": self.ci_high,
            "pValue": self.p_value,
            "conclusive": self.conclusive,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class Experiment:
    key: str
    arms: list[Group]
    comparisons: list[Comparison]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "arms": [a.as_dict() for a in self.arms],
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class Readout:
    journey_id: str
    version: str | None
    versions: list[dict[str, Any]]
    goal: dict[str, Any] | None
    holdout_share: float
    everyone: Group
    treated: Group
    holdout: Group | None
    control_group: Group | None
    against_holdout: Comparison | None
    experiments: list[Experiment]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "journeyId": self.journey_id,
            "version": self.version,
            "versions": self.versions,
            "goal": self.goal,
            "holdoutShare": self.holdout_share,
            "everyone": self.everyone.as_dict(),
            "treated": self.treated.as_dict(),
            "holdout": self.holdout.as_dict() if self.holdout else None,
            "controlGroup": self.control_group.as_dict() if self.control_group else None,
            "againstHoldout": self.against_holdout.as_dict() if self.against_holdout else None,
            "experiments": [e.as_dict() for e in self.experiments],
            "warnings": self.warnings,
            "minConversions": min_conversions(),
        }


def min_conversions() -> int:
    return int(getattr(settings, "HOGSEND_READOUT_MIN_CONVERSIONS", 10))


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _sample_warning(group: Group, against: Group) -> str:
    """What keeps this comparison from saying anything yet, or ''."""
    needed = min_conversions()
    for g in (group, against):
        if not g.entrants:
            return f"{g.name} has no entrants yet"
    short = [g for g in (group, against) if g.conversions < needed]
    if short:
        counts = ", ".join(f"{g.name} has {g.conversions}" for g in short)
        return f"too few conversions to say: {counts}; at least {needed} per group are needed"
    thin = [g for g in (group, against) if g.entrants - g.conversions < MIN_OUTCOMES_FOR_NORMAL]
    if thin:
        return (
            "the z-test's normal approximation does not hold: "
            + ", ".join(f"{g.name} has {g.entrants - g.conversions} non-conversions" for g in thin)
            + f" (at least {MIN_OUTCOMES_FOR_NORMAL} are needed)"
        )
    return ""


def compare(group: Group, against: Group) -> Comparison:
    """`group`'s conversion rate minus `against`'s: the difference, its 95 % Wald interval and the
    pooled two-proportion z-test's two-sided p-value (statsmodels), with a warning while the
    sample is too small to say."""
    warning = _sample_warning(group, against)
    if not group.entrants or not against.entrants:
        return Comparison(group.name, against.name, None, None, None, None, warning)
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    difference = group.conversions / group.entrants - against.conversions / against.entrants
    with warnings.catch_warnings():  # a degenerate sample (all or none converted) gives nan, said below
        warnings.simplefilter("ignore")
        low, high = confint_proportions_2indep(
            group.conversions,
            group.entrants,
            against.conversions,
            against.entrants,
            method="wald",
            compare="diff",
            alpha=1 - CONFIDENCE,
        )
        pooled = (group.conversions + against.conversions) / (group.entrants + against.entrants)
        p_value = None
        if 0 < pooled < 1:
            _, p = proportions_ztest(
                [group.conversions, against.conversions], [group.entrants, against.entrants]
            )
            p_value = _finite(p)
    if p_value is None and not warning:
        warning = "no p-value: every entrant of both groups converted, or none did"
    return Comparison(group.name, against.name, difference, _finite(low), _finite(high), p_value, warning)


def journey_versions(*, journey_id: str) -> list[dict[str, Any]]:
    """The versions runs of this journey enrolled under, newest first, with their run counts."""
    rows = (
        JourneyRun.objects.filter(journey_id=journey_id)
        .exclude(version="")
        .values("version")
        .annotate(first=Min("entered_at"), runs=Count("pk"))
        .order_by("-first")
    )
    return [{"version": r["version"], "since": r["first"], "runs": r["runs"]} for r in rows[:50]]


def _group_of(held_out: bool, control_group: bool) -> str:
    if held_out:
        return "holdout"
    return "control group" if control_group else "treated"


def journey_readout(*, journey: Journey, version: str | None = None) -> Readout:
    runs = JourneyRun.objects.filter(journey_id=journey.id)
    exposures = VariantExposure.objects.filter(journey_id=journey.id)
    if version:
        runs, exposures = runs.filter(version=version), exposures.filter(version=version)
    counts = {"treated": [0, 0], "holdout": [0, 0], "control group": [0, 0]}
    for row in (
        runs.order_by()
        .values("held_out", "control_group")
        .annotate(n=Count("pk"), converted=Count("conversion"))
    ):
        group = counts[_group_of(row["held_out"], row["control_group"])]
        group[0], group[1] = group[0] + row["n"], group[1] + row["converted"]
    treated = Group("treated", *counts["treated"])
    held = Group("holdout", *counts["holdout"])
    control = Group("control group", *counts["control group"])
    everyone = Group(
        "everyone",
        treated.entrants + held.entrants + control.entrants,
        treated.conversions + held.conversions + control.conversions,
    )
    has_holdout = bool(journey.holdout) or held.entrants > 0

    arms: dict[str, dict[str, list[int]]] = {}
    order: dict[tuple[str, str], int] = {}
    rows = (
        # Held-out and control-group runs drew an arm too, but were sent none of it.
        exposures.filter(run__held_out=False, run__control_group=False)
        .order_by()
        .values("key", "arm")
        .annotate(n=Count("pk"), converted=Count("run__conversion"), position=Min("arm_index"))
    )
    for row in rows:
        arms.setdefault(row["key"], {})[row["arm"]] = [row["n"], row["converted"]]
        order[(row["key"], row["arm"])] = row["position"]
    experiments = []
    for key in sorted(arms):
        groups = [
            Group(arm, *counts)
            for arm, counts in sorted(arms[key].items(), key=lambda item: (order[(key, item[0])], item[0]))
        ]
        comparisons = [compare(g, held) for g in groups] if has_holdout else []
        comparisons += [compare(g, groups[0]) for g in groups[1:]]
        experiments.append(Experiment(key=key, arms=groups, comparisons=comparisons))

    notes = []
    if journey.goal is None:
        notes.append("This journey names no goal, so nothing converts: add goal=Goal(event, within=days(7)).")
    if not everyone.entrants:
        notes.append("No runs yet" + (f" on version {version}" if version else "") + ".")
    goal = None
    if journey.goal is not None:
        goal = {"event": journey.goal.event, "within": str(journey.goal.within)}
    return Readout(
        journey_id=journey.id,
        version=version or None,
        versions=journey_versions(journey_id=journey.id),
        goal=goal,
        holdout_share=journey.holdout,
        everyone=everyone,
        treated=treated,
        holdout=held if has_holdout else None,
        control_group=control if control.entrants else None,
        against_holdout=compare(treated, held) if has_holdout else None,
        experiments=experiments,
        warnings=notes,
    )
