"""The goal seam: ingest tells whoever measures journeys' goals which events were stored.

Inside the ingest transaction, the installed goal rules (the journeys app's, installed at
start-up) attribute the events that complete a journey's goal to the runs they convert. The
names they listen for are known in memory, so an event no goal names costs no statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contacts.models import Event


class GoalRules(Protocol):
    def event_names(self) -> frozenset[str]:
        """Every event name some journey's goal names (a cheap filter before any query)."""
        ...

    def apply(self, *, events: Sequence[Event]) -> int:
        """Inside the ingest transaction: record the conversions these events make; how many."""
        ...


class NoGoalRules:
    def event_names(self) -> frozenset[str]:
        return frozenset()

    def apply(self, *, events: Sequence[Event]) -> int:
        return 0


_goal_rules: GoalRules = NoGoalRules()


def goal_rules() -> GoalRules:
    return _goal_rules


def install_goal_rules(rules: GoalRules) -> None:
    global _goal_rules
    _goal_rules = rules


def conversions_apply(*, stored: Sequence[Event]) -> int:
    """Ingest's call: hand the stored events some goal names to the goal rules."""
    rules = goal_rules()
    names = rules.event_names()
    if not names:
        return 0
    candidates = [e for e in stored if e.name in names]
    return rules.apply(events=candidates) if candidates else 0
