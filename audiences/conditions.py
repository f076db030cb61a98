"""The segment condition language: the journeys' property conditions, extended for who a contact is.

A segment's `where` is a tree of conditions over one contact:
- contact properties, in the journeys' language (`b.prop("plan").eq("pro")`, or plain data);
- consent (`b.subscribed()`, `b.accepts("product-updates")`, `b.suppressed()`, `b.confirmed()`);
- event history (`b.event("feature.used").at_least(3, within=days(7))`, `b.event(...).never()`,
  `b.event("session.started").last_more_than(days(14))`), optionally filtered by the event's
  properties (`b.event("feature.used", where=lambda e: e.prop("feature").eq("export"))`);
- other segments (`b.in_segment("trial-users")`);
combined with `&` (and), `|` (or), `~` (not), `b.all_of(...)` and `b.any_of(...)`; a list means all.

Every condition compiles to SQL over the contact row `c`, so membership is evaluated set-based: the
whole table at once for a refresh, or a handful of contacts inside an ingest. A property condition
means in SQL exactly what it means in Python and CEL (type-strict, missing equals null; see
`journeys.conditions`); the table of condition cases runs through all three. A condition that
cannot be compiled is refused when the segment is defined, with a message that names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from contacts.categories import UnknownCategory, category_get
from journeys.conditions import OPERATORS, ORDERINGS, Condition, ConditionError, parse_where
from journeys.durations import Duration, journey_time


class SegmentConditionError(ValueError):
    """A segment condition that cannot be compiled; raised when the segment is defined."""


class _Now:
    """Placeholder for the evaluation moment in compiled parameters (bound per statement)."""

    def __repr__(self) -> str:
        return "NOW"


NOW = _Now()


@dataclass(frozen=True)
class References:
    """What a condition reads: what ingest must re-check it for, and whether time alone changes it."""

    event_names: frozenset[str] = frozenset()
    property_keys: frozenset[str] = frozenset()
    consent: bool = False
    segments: frozenset[str] = frozenset()
    time_based: bool = False

    def __or__(self, other: References) -> References:
        return References(
            self.event_names | other.event_names,
            self.property_keys | other.property_keys,
            self.consent or other.consent,
            self.segments | other.segments,
            self.time_based or other.time_based,
        )


class Node:
    """A compiled condition over one contact (alias `c` in SQL)."""

    def sql(self) -> tuple[str, list[Any]]:
        """A boolean SQL expression (never NULL) and its parameters; `NOW` marks the moment."""
        raise NotImplementedError

    def references(self) -> References:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __and__(self, other: Any) -> Node:
        left = self.children if isinstance(self, AllOf) else (self,)
        return AllOf((*left, as_node(other)))  # a & b & c is one conjunction, not a nest

    def __or__(self, other: Any) -> Node:
        left = self.children if isinstance(self, AnyOf) else (self,)
        return AnyOf((*left, as_node(other)))

    def __invert__(self) -> Node:
        return Not(self)

    def __str__(self) -> str:
        return self.describe()


# --- journeys' property conditions in SQL ---------------------------------------------------------


def property_sql(condition: Condition, column: str) -> tuple[str, list[Any]]:
    """`condition` over the jsonb `column`, with `Condition.matches`' meaning; never NULL."""
    parts = condition.property.split(".")
    if len(parts) == 1:
        value, vparams = f"({column} -> %s)", [condition.property]
    else:  # a key spelled with the dots wins over the nested walk, as in Python and CEL
        value = f"(CASE WHEN {column} ? %s THEN {column} -> %s ELSE {column} #> %s END)"
        vparams = [condition.property, condition.property, parts]
    present = f"coalesce(jsonb_typeof({value}) <> 'null', false)"
    op, literal = condition.operator, condition.value
    if op == "exists" or (op == "neq" and literal is None):
        return present, vparams
    if op == "not_exists" or (op == "eq" and literal is None):
        return f"NOT {present}", vparams
    if op == "eq":
        return f"coalesce({value} = %s::jsonb, false)", [*vparams, json.dumps(literal)]
    if op == "neq":
        return f"NOT coalesce({value} = %s::jsonb, false)", [*vparams, json.dumps(literal)]
    if op == "contains":
        in_list = f"WHEN 'array' THEN {value} @> jsonb_build_array(%s::jsonb)"
        if isinstance(literal, str):
            return (
                f"coalesce(CASE jsonb_typeof({value}) WHEN 'string' THEN strpos({value} #>> '{{}}', %s) > 0 "
                f"{in_list} ELSE false END, false)",
                [*vparams, *vparams, literal, *vparams, json.dumps(literal)],
            )
        return (
            f"coalesce(CASE jsonb_typeof({value}) {in_list} ELSE false END, false)",
            [*vparams, *vparams, json.dumps(literal)],
        )
    symbol = ORDERINGS[op]
    if isinstance(literal, str):  # code point order: UTF-8 bytes under the C collation
        return (
            f"coalesce(CASE WHEN jsonb_typeof({value}) = 'string' "
            f"THEN ({value} #>> '{{}}') COLLATE \"C\" {symbol} %s ELSE false END, false)",
            [*vparams, *vparams, literal],
        )
    return (
        f"coalesce(CASE WHEN jsonb_typeof({value}) = 'number' "
        f"THEN ({value})::float8 {symbol} %s::float8 ELSE false END, false)",
        [*vparams, *vparams, float(literal)],
    )


# --- the nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactProperty(Node):
    condition: Condition

    def sql(self) -> tuple[str, list[Any]]:
        return property_sql(self.condition, "c.properties")

    def references(self) -> References:
        name = self.condition.property
        return References(property_keys=frozenset({name, name.split(".")[0]}))

    def describe(self) -> str:
        c = self.condition
        value = "" if c.operator in ("exists", "not_exists") else f" {c.value!r}"
        return f"property {c.property} {c.operator}{value}"


@dataclass(frozen=True)
class Consent(Node):
    """`subscribed`, `suppressed`, `confirmed`, or `accepts` a category."""

    kind: str
    category: str = ""

    def sql(self) -> tuple[str, list[Any]]:
        if self.kind == "subscribed":
            return "(c.unsubscribed_at IS NULL)", []
        if self.kind == "confirmed":
            return "(NOT c.confirmation_required OR c.confirmed_at IS NOT NULL)", []
        if self.kind == "suppressed":
            return (
                "(c.email <> '' AND EXISTS (SELECT 1 FROM contacts_suppression s "
                "WHERE upper(s.email) = upper(c.email)))",
                [],
            )
        category = category_get(self.category)
        if not category.user_manageable:
            return "true", []
        if category.default_opt_in:
            return "(NOT coalesce(c.category_opt_outs @> ARRAY[%s]::varchar[], false))", [self.category]
        return "coalesce(c.category_opt_ins @> ARRAY[%s]::varchar[], false)", [self.category]

    def references(self) -> References:
        # The suppression list is by address: a new address can change "suppressed".
        return References(
            consent=True, property_keys=frozenset({"$email"} if self.kind == "suppressed" else ())
        )

    def describe(self) -> str:
        return f"accepts {self.category}" if self.kind == "accepts" else self.kind


@dataclass(frozen=True)
class EventHistory(Node):
    """How often, or how long ago, the contact did `name` (with `where` on its properties)."""

    name: str
    where: tuple[Condition, ...] = ()
    # count: compare the number of matching events (within the last `within`, if set) with `count`
    # last_before: did it, and the last one is older than `ago`; last_within: the last one is newer.
    test: str = "count"
    operator: str = "gte"
    count: int = 1
    within: Duration | None = None
    ago: Duration | None = None

    def _filter(self) -> tuple[str, list[Any]]:
        parts, params = ["e.contact_id = c.id", "e.name = %s"], [self.name]
        for condition in self.where:
            sql, p = property_sql(condition, "e.properties")
            parts.append(sql)
            params.extend(p)
        return " AND ".join(parts), params

    def sql(self) -> tuple[str, list[Any]]:
        where, params = self._filter()
        if self.test in ("last_before", "last_within"):
            assert self.ago is not None
            symbol = "<" if self.test == "last_before" else ">="
            return (
                f"coalesce((SELECT max(e.occurred_at) FROM contacts_event e WHERE {where}) "
                f"{symbol} %s::timestamptz - %s::interval, false)",
                [*params, NOW, journey_time(self.ago)],
            )
        if self.within is not None:
            where += " AND e.occurred_at >= %s::timestamptz - %s::interval"
            params = [*params, NOW, journey_time(self.within)]
        op, n = self.operator, self.count
        # Counting stops at the first n + 1 rows: a heavy user costs no more than a light one.
        exists = f"EXISTS (SELECT 1 FROM contacts_event e WHERE {where})"
        if (op, n) in (("gte", 1), ("gt", 0)):
            return exists, params
        if (op, n) in (("lt", 1), ("eq", 0), ("lte", 0)):
            return f"NOT {exists}", params
        counted = f"(SELECT count(*) FROM (SELECT 1 FROM contacts_event e WHERE {where} LIMIT {n + 1}) x)"
        symbol = {"eq": "=", "neq": "<>", **ORDERINGS}[op]
        return f"({counted} {symbol} {n})", params

    def references(self) -> References:
        return References(
            event_names=frozenset({self.name}),
            time_based=self.within is not None or self.ago is not None,
        )

    def describe(self) -> str:
        filtered = (
            " where "
            + " and ".join(ContactProperty(c).describe().removeprefix("property ") for c in self.where)
            if self.where
            else ""
        )
        if self.test == "last_before":
            return f"last {self.name}{filtered} more than {self.ago} ago"
        if self.test == "last_within":
            return f"last {self.name}{filtered} within {self.ago}"
        window = f" in the last {self.within}" if self.within else ""
        words = {"gte": "at least", "gt": "more than", "lte": "at most", "lt": "fewer than", "eq": "exactly"}
        if (self.operator, self.count) in (("lt", 1), ("eq", 0), ("lte", 0)):
            return f"never did {self.name}{filtered}{window}"
        times = "time" if self.count == 1 else "times"
        return f"did {self.name}{filtered} {words.get(self.operator, self.operator)} {self.count} {times}{window}"


@dataclass(frozen=True)
class InSegment(Node):
    segment_id: str

    def sql(self) -> tuple[str, list[Any]]:
        return (
            "EXISTS (SELECT 1 FROM audiences_segmentmembership m "
            "WHERE m.segment_id = %s AND m.contact_id = c.id)",
            [self.segment_id],
        )

    def references(self) -> References:
        return References(segments=frozenset({self.segment_id}))

    def describe(self) -> str:
        return f"in segment {self.segment_id}"


@dataclass(frozen=True)
class AllOf(Node):
    children: tuple[Node, ...] = field(default_factory=tuple)

    def sql(self) -> tuple[str, list[Any]]:
        return _join(self.children, " AND ", "true")

    def references(self) -> References:
        return _refs(self.children)

    def describe(self) -> str:
        return " and ".join(_wrap(c) for c in self.children) or "everyone"


@dataclass(frozen=True)
class AnyOf(Node):
    children: tuple[Node, ...] = field(default_factory=tuple)

    def sql(self) -> tuple[str, list[Any]]:
        return _join(self.children, " OR ", "false")

    def references(self) -> References:
        return _refs(self.children)

    def describe(self) -> str:
        return " or ".join(_wrap(c) for c in self.children) or "no one"


@dataclass(frozen=True)
class Not(Node):
    child: Node

    def sql(self) -> tuple[str, list[Any]]:
        sql, params = self.child.sql()
        return f"NOT ({sql})", params

    def references(self) -> References:
        return self.child.references()

    def describe(self) -> str:
        return f"not {_wrap(self.child)}"


def _join(children: Iterable[Node], glue: str, empty: str) -> tuple[str, list[Any]]:
    parts, params = [], []
    for child in children:
        sql, p = child.sql()
        parts.append(f"({sql})")
        params.extend(p)
    return (glue.join(parts) if parts else empty), params


def _refs(children: Iterable[Node]) -> References:
    out = References()
    for child in children:
        out = out | child.references()
    return out


def _wrap(node: Node) -> str:
    return f"({node.describe()})" if isinstance(node, (AllOf, AnyOf)) else node.describe()


# --- the builder a `where=lambda b: ...` receives ---------------------------------------------------

_COUNT_OPERATORS = ("gte", "gt", "lte", "lt", "eq", "neq")


class EventRef:
    """`b.event("feature.used")`: then a test of how often or how long ago."""

    def __init__(self, name: str, where: Any = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SegmentConditionError(f"b.event() needs an event name; got {name!r}")
        self.name = name
        try:
            self.where = parse_where(where)
        except ConditionError as error:
            raise SegmentConditionError(f"event {name} where: {error}") from None

    def _count(self, operator: str, n: Any, within: Any) -> EventHistory:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SegmentConditionError(f"event {self.name}: a count must be a whole number ≥ 0; got {n!r}")
        return EventHistory(
            self.name, self.where, "count", operator, n, _duration(within, f"event {self.name} within")
        )

    def at_least(self, n: int, *, within: Any = None) -> EventHistory:
        return self._count("gte", n, within)

    def at_most(self, n: int, *, within: Any = None) -> EventHistory:
        return self._count("lte", n, within)

    def more_than(self, n: int, *, within: Any = None) -> EventHistory:
        return self._count("gt", n, within)

    def fewer_than(self, n: int, *, within: Any = None) -> EventHistory:
        return self._count("lt", n, within)

    def exactly(self, n: int, *, within: Any = None) -> EventHistory:
        return self._count("eq", n, within)

    def ever(self, *, within: Any = None) -> EventHistory:
        return self._count("gte", 1, within)

    def never(self, *, within: Any = None) -> EventHistory:
        return self._count("eq", 0, within)

    def last_more_than(self, ago: Any) -> EventHistory:
        """Did it, and the last time was longer ago than `ago` (never doing it is not enough)."""
        return EventHistory(
            self.name, self.where, "last_before", ago=_duration(ago, f"event {self.name} last_more_than")
        )

    def last_within(self, ago: Any) -> EventHistory:
        """The last time was at most `ago` ago."""
        return EventHistory(
            self.name, self.where, "last_within", ago=_duration(ago, f"event {self.name} last_within")
        )


def _duration(value: Any, label: str) -> Duration | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = Duration(value.total_seconds())
    if not isinstance(value, Duration) or value.seconds <= 0:
        raise SegmentConditionError(f"{label} needs a positive duration such as days(7); got {value!r}")
    return value


class ConditionBuilder:
    """What a segment's `where=lambda b: ...` receives."""

    @staticmethod
    def prop(name: str) -> _ContactPropertyRef:
        return _ContactPropertyRef(name)

    @staticmethod
    def event(name: str, where: Any = None) -> EventRef:
        return EventRef(name, where)

    @staticmethod
    def in_segment(segment_id: str) -> InSegment:
        if not isinstance(segment_id, str) or not segment_id:
            raise SegmentConditionError(f"in_segment needs a segment id; got {segment_id!r}")
        return InSegment(segment_id)

    @staticmethod
    def not_in_segment(segment_id: str) -> Node:
        return Not(ConditionBuilder.in_segment(segment_id))

    @staticmethod
    def subscribed() -> Consent:
        return Consent("subscribed")

    @staticmethod
    def unsubscribed() -> Node:
        return Not(Consent("subscribed"))

    @staticmethod
    def confirmed() -> Consent:
        return Consent("confirmed")

    @staticmethod
    def suppressed() -> Consent:
        return Consent("suppressed")

    @staticmethod
    def accepts(category: str) -> Consent:
        """The contact's category choices let `category` through (global unsubscribe aside)."""
        try:
            category_get(category)
        except UnknownCategory as error:
            raise SegmentConditionError(f"accepts({category!r}): {error}") from None
        return Consent("accepts", category)

    @staticmethod
    def all_of(*conditions: Any) -> Node:
        return AllOf(tuple(as_node(c) for c in conditions))

    @staticmethod
    def any_of(*conditions: Any) -> Node:
        return AnyOf(tuple(as_node(c) for c in conditions))

    @staticmethod
    def not_(condition: Any) -> Node:
        return Not(as_node(condition))


class _ContactPropertyRef:
    """`b.prop("plan")`: the journeys' operators, each making a contact-property condition."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, operator: str) -> Callable[..., ContactProperty]:
        if operator.startswith("__"):
            raise AttributeError(operator)
        if operator not in OPERATORS:
            raise SegmentConditionError(
                f"unknown operator {operator!r} for property {self.name!r}; use one of {', '.join(OPERATORS)}"
            )

        def make(*value: Any) -> ContactProperty:
            try:
                return ContactProperty(Condition(self.name, operator, *value))
            except ConditionError as error:
                raise SegmentConditionError(str(error)) from None

        return make


def as_node(spec: Any) -> Node:
    """Every accepted spelling of a segment condition as one node (a list means all of it)."""
    if isinstance(spec, Node):
        return spec
    if isinstance(spec, Condition):
        return ContactProperty(spec)
    if callable(spec) and not isinstance(spec, Mapping):
        return as_node(spec(ConditionBuilder()))
    if isinstance(spec, Mapping):
        try:
            [condition] = parse_where(spec)
        except ConditionError as error:
            raise SegmentConditionError(str(error)) from None
        return ContactProperty(condition)
    if isinstance(spec, (list, tuple)):
        return AllOf(tuple(as_node(item) for item in spec))
    raise SegmentConditionError(
        f"not a segment condition: {spec!r} (use lambda b: b.prop(...)/b.event(...)/b.in_segment(...))"
    )


def bind_now(params: list[Any], now: Any) -> list[Any]:
    return [now if p is NOW else p for p in params]
