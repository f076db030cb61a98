"""Property conditions: `prop("plan").eq("enterprise")`, or the same as plain data.

All conditions in a list must hold (AND). Plain data is a mapping with `property`, `operator` and
`value` (the original product's extra `type`/`source` keys are accepted and ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "exists", "not_exists", "contains")
_MISSING = object()


class ConditionError(ValueError):
    """A condition that cannot be understood, raised when the journey is defined."""


@dataclass(frozen=True)
class Condition:
    property: str
    operator: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ConditionError(
                f"unknown operator {self.operator!r} for property {self.property!r}; "
                f"use one of {', '.join(OPERATORS)}"
            )

    def matches(self, properties: Mapping[str, Any]) -> bool:
        actual = _lookup(properties, self.property)
        op = self.operator
        if op == "exists":
            return actual is not _MISSING and actual is not None
        if op == "not_exists":
            return actual is _MISSING or actual is None
        if actual is _MISSING:
            return op == "neq"
        if op == "eq":
            return actual == self.value
        if op == "neq":
            return actual != self.value
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(self.value, str) and self.value in actual
            if isinstance(actual, (list, tuple)):
                return self.value in actual
            return False
        return _compare(actual, op, self.value)

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"property": self.property, "operator": self.operator}
        if self.operator not in ("exists", "not_exists"):
            data["value"] = self.value
        return data


def _lookup(properties: Mapping[str, Any], path: str) -> Any:
    """Look up `a.b.c` through nested mappings; a literal key with dots wins."""
    if path in properties:
        return properties[path]
    current: Any = properties
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _compare(actual: Any, op: str, expected: Any) -> bool:
    numeric = (int, float)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if not (
        (isinstance(actual, numeric) and isinstance(expected, numeric))
        or (isinstance(actual, str) and isinstance(expected, str))
    ):
        return False
    return {
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


class PropertyRef:
    """The left side of a builder condition: `prop("seats").gte(50)`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def eq(self, value: Any) -> Condition:
        return Condition(self.name, "eq", value)

    def neq(self, value: Any) -> Condition:
        return Condition(self.name, "neq", value)

    def gt(self, value: Any) -> Condition:
        return Condition(self.name, "gt", value)

    def gte(self, value: Any) -> Condition:
        return Condition(self.name, "gte", value)

    def lt(self, value: Any) -> Condition:
        return Condition(self.name, "lt", value)

    def lte(self, value: Any) -> Condition:
        return Condition(self.name, "lte", value)

    def exists(self) -> Condition:
        return Condition(self.name, "exists")

    def not_exists(self) -> Condition:
        return Condition(self.name, "not_exists")

    def contains(self, value: Any) -> Condition:
        return Condition(self.name, "contains", value)


def prop(name: str) -> PropertyRef:
    return PropertyRef(name)


class _Builder:
    """What a `where=lambda b: ...` callable receives."""

    prop = staticmethod(prop)


ConditionLike = Condition | Mapping[str, Any]
WhereSpec = ConditionLike | Iterable[ConditionLike] | Callable[[Any], Any] | None


def parse_where(where: WhereSpec) -> tuple[Condition, ...]:
    """Normalise every accepted spelling of a `where` into a tuple of conditions."""
    if where is None:
        return ()
    if callable(where) and not isinstance(where, (Condition, Mapping)):
        where = where(_Builder())
    if isinstance(where, (Condition, Mapping)):
        where = [where]
    conditions = []
    for item in where:  # type: ignore[union-attr]
        if isinstance(item, Condition):
            conditions.append(item)
        elif isinstance(item, Mapping):
            if "property" not in item or "operator" not in item:
                raise ConditionError(f"a condition needs 'property' and 'operator': {dict(item)!r}")
            conditions.append(Condition(str(item["property"]), str(item["operator"]), item.get("value")))
        else:
            raise ConditionError(f"not a condition: {item!r}")
    return tuple(conditions)


def all_match(conditions: Iterable[Condition], properties: Mapping[str, Any]) -> bool:
    return all(condition.matches(properties) for condition in conditions)
