"""Property conditions: `prop("plan").eq("enterprise")`, or the same as plain data.

All conditions in a list must hold (AND). Plain data is a mapping with `property`, `operator` and
`value` (the original product's extra `type`/`source` keys are accepted and ignored).

A condition means one thing everywhere. Triggers, exits and look-backs test it here in Python; a
live wait hands the engine the CEL expression `Condition.to_cel` writes, and the two agree on every
input (a table of cases runs through both, on the real engine too, and a property test generates
more):
- Comparisons are type-strict: `1` is not `true`, `"1"` is not `1`. Numbers compare as numbers
  (`1 == 1.0`: JSON does not tell them apart, and the engine reads every number as a double).
- A property that is missing and one that is `null` are the same: `exists` is false, `eq` is false,
  `neq` is true. `eq(None)` means `not_exists`, `neq(None)` means `exists`.
- `gt`/`gte`/`lt`/`lte` compare numbers with numbers and strings with strings (code point order);
  any other pair is false.
- `contains` is a substring test on a string and a type-strict membership test on a list; false
  for anything else.
- `a.b.c` walks nested objects; a key that itself contains the dots wins.
Values are checked when the journey is defined: a comparison value must be a string, a number, a
boolean or None (an ordering value: a string or a number).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "exists", "not_exists", "contains")
ORDERINGS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_MISSING = object()


class ConditionError(ValueError):
    """A condition that cannot be understood, raised when the journey is defined."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or _is_number(value)


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
        if not self.property:
            raise ConditionError("a condition needs a property name")
        if self.operator in ("exists", "not_exists"):
            return
        value = self.value
        if _is_number(value) and not math.isfinite(value):
            raise ConditionError(f"{self.property} {self.operator}: {value!r} is not a finite number")
        if self.operator in ORDERINGS and not (isinstance(value, str) or _is_number(value)):
            raise ConditionError(
                f"{self.property} {self.operator} needs a number or a string to compare with; got {value!r}"
            )
        if not _is_scalar(value):
            raise ConditionError(
                f"{self.property} {self.operator} needs a string, number, boolean or None; got {value!r}"
            )

    # --- Python ---------------------------------------------------------------------------------

    def matches(self, properties: Mapping[str, Any]) -> bool:
        actual = _lookup(properties, self.property)
        present = actual is not _MISSING and actual is not None
        op, value = self.operator, self.value
        if op == "exists" or (op == "neq" and value is None):
            return present
        if op == "not_exists" or (op == "eq" and value is None):
            return not present
        if op == "neq":
            return not (present and _same(actual, value))
        if not present:
            return False
        if op == "eq":
            return _same(actual, value)
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(value, str) and value in actual
            if isinstance(actual, list):
                return any(_same(item, value) for item in actual)
            return False
        return _ordered(actual, op, value)

    # --- CEL, as the engine evaluates a live wait -----------------------------------------------

    def to_cel(self, root: str = "input.properties") -> str:
        """The same condition as a CEL expression over the JSON object at `root`.

        Every comparison is guarded by a type test, so no input makes the expression fail: it is
        true or false, exactly as `matches` says.
        """
        present, value = _cel_path(root, self.property)
        present = f"({present} && type({value}) != null_type)"
        op, literal = self.operator, self.value
        if op == "exists" or (op == "neq" and literal is None):
            return present
        if op == "not_exists" or (op == "eq" and literal is None):
            return f"!{present}"
        if op == "eq":
            return f"({present} && {_cel_same(value, literal)})"
        if op == "neq":
            return f"!({present} && {_cel_same(value, literal)})"
        if op == "contains":
            # Ternaries, not `&&`: a type test must keep a method or macro off the wrong type in
            # every evaluator (some evaluate a macro before short-circuiting `&&`).
            in_string = (
                f"(type({value}) == string ? {value}.contains({_cel_literal(literal)}) : false)"
                if isinstance(literal, str)
                else "false"
            )
            in_list = f"(type({value}) == list ? {value}.exists(item, {_cel_same('item', literal)}) : false)"
            return f"({present} && ({in_string} || {in_list}))"
        symbol = ORDERINGS[op]
        if isinstance(literal, str):
            return f"({present} && type({value}) == string && {value} {symbol} {_cel_literal(literal)})"
        return f"({present} && {_cel_is_number(value)} && double({value}) {symbol} {_cel_literal(literal)})"

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


def _same(actual: Any, expected: Any) -> bool:
    """Type-strict equality of two scalars; numbers as the engine sees them (doubles)."""
    if expected is None:
        return actual is None
    if isinstance(expected, bool) or isinstance(expected, str):
        return type(actual) is type(expected) and actual == expected
    return _is_number(actual) and float(actual) == float(expected)


def _ordered(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return False
        left, right = actual, expected
    elif _is_number(actual):
        left, right = float(actual), float(expected)
    else:
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _cel_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return repr(float(value))  # always a double literal: the engine's numbers are doubles
    return json.dumps(value, ensure_ascii=False)


def _cel_is_number(value: str) -> str:
    return f"(type({value}) == double || type({value}) == int || type({value}) == uint)"


def _cel_same(value: str, literal: Any) -> str:
    if literal is None:
        return f"type({value}) == null_type"
    if isinstance(literal, bool):
        return f"(type({value}) == bool && {value} == {_cel_literal(literal)})"
    if isinstance(literal, str):
        return f"(type({value}) == string && {value} == {_cel_literal(literal)})"
    return f"({_cel_is_number(value)} && double({value}) == {_cel_literal(literal)})"


def _cel_path(root: str, path: str) -> tuple[str, str]:
    """(presence, value) expressions for a property path, with `_lookup`'s rules.

    Keys are indexed (`m["key"]`), never selected (`m.key`), so any key spelling is safe; each
    step is checked to be an object before it is indexed.
    """
    parts = path.split(".")
    presence = [f"{_cel_literal(parts[0])} in {root}"]
    current = f"{root}[{_cel_literal(parts[0])}]"
    for part in parts[1:]:
        presence.append(f"type({current}) == map && {_cel_literal(part)} in {current}")
        current = f"{current}[{_cel_literal(part)}]"
    nested_presence = " && ".join(presence)
    if len(parts) == 1:
        return f"({nested_presence})", current
    literal_key = _cel_literal(path)
    return (
        f"({literal_key} in {root} || ({nested_presence}))",
        f"({literal_key} in {root} ? {root}[{literal_key}] : {current})",
    )


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


def all_to_cel(conditions: Iterable[Condition], root: str = "input.properties") -> str:
    """Every condition as one CEL conjunction (`true` for none)."""
    parts = [condition.to_cel(root) for condition in conditions]
    return " && ".join(parts) if parts else "true"
