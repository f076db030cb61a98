"""`define_segment`: a segment is an id, a name and a condition over contacts, defined in code.

```python
TRIAL_PRO = define_segment(
    "trial-pro",
    name="Pro trials using the product",
    where=lambda b: b.prop("plan").eq("pro") & b.event("feature.used").at_least(3, within=days(7)),
)
```

List segments in a module's `SEGMENTS` and name the module in `HOGSEND_SEGMENT_MODULES`; the
registry loads them at start-up and refuses a segment that names an unknown segment or that
depends on itself.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings

from audiences.conditions import Node, References, SegmentConditionError, as_node

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class SegmentDefinitionError(ValueError):
    """A segment that cannot be defined; raised at import time, with the segment and the reason."""


class UnknownSegment(LookupError):
    """No module defines a segment with this id."""

    def __init__(self, segment_id: str) -> None:
        self.segment_id = segment_id
        super().__init__(f"no segment with id {segment_id!r}")


@dataclass(frozen=True, eq=False)
class Segment:
    id: str
    name: str
    condition: Node
    description: str = ""
    sql_text: str = field(default="", repr=False)
    sql_params: tuple[Any, ...] = field(default=(), repr=False)

    @cached_property
    def references(self) -> References:
        return self.condition.references()

    @property
    def time_based(self) -> bool:
        return self.references.time_based

    def describe(self) -> str:
        return self.condition.describe()

    def watches(self, *, event_names: Iterable[str] = (), property_keys: Iterable[str] = ()) -> bool:
        refs = self.references
        return not refs.event_names.isdisjoint(event_names) or not refs.property_keys.isdisjoint(
            property_keys
        )


def define_segment(id: str, *, name: str, where: Any, description: str = "") -> Segment:
    """Validate and compile a segment; a condition that cannot be compiled is refused here."""
    if not isinstance(id, str) or not _ID_PATTERN.match(id):
        raise SegmentDefinitionError(
            f"segment id {id!r} must be lower-case letters, digits, '-' or '_' (at most 100)"
        )
    if not name:
        raise SegmentDefinitionError(f"segment {id!r} needs a name")
    try:
        condition = as_node(where)
        sql, params = condition.sql()
    except (SegmentConditionError, ValueError, TypeError) as error:
        raise SegmentDefinitionError(f"segment {id!r}: condition cannot be compiled: {error}") from None
    return Segment(
        id=id, name=name, condition=condition, description=description, sql_text=sql, sql_params=tuple(params)
    )


class SegmentRegistry:
    def __init__(self) -> None:
        self._segments: dict[str, Segment] = {}
        self._levels: dict[str, int] = {}
        self._by_event: dict[str, tuple[Segment, ...]] = {}
        self._by_property: dict[str, tuple[Segment, ...]] = {}

    def register(self, *segments: Segment) -> None:
        for segment in segments:
            if not isinstance(segment, Segment):
                raise SegmentDefinitionError(f"not a segment: {segment!r} (build one with define_segment)")
            known = self._segments.get(segment.id)
            if known is not None and known is not segment:
                raise SegmentDefinitionError(f"two segments share the id {segment.id!r}")
            self._segments[segment.id] = segment
        self._levels = self._resolve()

    def unregister(self, segment_id: str) -> None:
        """Forget a segment, and every segment that reads it (they cannot be evaluated alone)."""
        self._segments.pop(segment_id, None)
        for dependent in self.dependents([segment_id]):
            self.unregister(dependent.id)
        self._levels = self._resolve()

    def replace(self, segments: Iterable[Segment]) -> list[Segment]:
        """Define exactly these segments (tests and tools); returns the ones defined before."""
        previous = self.all()
        self._segments = {}
        self.register(*segments)
        return previous

    def _resolve(self) -> dict[str, int]:
        """Each segment's depth: 0 reads no segment, n reads segments of depth < n. Refuses a
        reference to an unknown segment and a cycle, naming them."""
        levels: dict[str, int] = {}

        def depth(segment_id: str, path: tuple[str, ...]) -> int:
            if segment_id in levels:
                return levels[segment_id]
            if segment_id in path:
                cycle = " -> ".join((*path[path.index(segment_id) :], segment_id))
                raise SegmentDefinitionError(f"segments depend on each other in a cycle: {cycle}")
            segment = self._segments[segment_id]
            level = 0
            for ref in sorted(segment.references.segments):
                if ref not in self._segments:
                    raise SegmentDefinitionError(
                        f"segment {segment_id!r} refers to segment {ref!r}, which no module defines"
                    )
                level = max(level, depth(ref, (*path, segment_id)) + 1)
            levels[segment_id] = level
            return level

        for segment_id in self._segments:
            depth(segment_id, ())
        self._index()
        return levels

    def _index(self) -> None:
        """Which segments read each event name and each contact property key: ingest looks an
        event up here, so one that no segment reads costs nothing."""
        by_event: dict[str, list[Segment]] = {}
        by_property: dict[str, list[Segment]] = {}
        for segment in self._segments.values():
            for name in segment.references.event_names:
                by_event.setdefault(name, []).append(segment)
            for key in segment.references.property_keys:
                by_property.setdefault(key, []).append(segment)
        self._by_event = {k: tuple(v) for k, v in by_event.items()}
        self._by_property = {k: tuple(v) for k, v in by_property.items()}

    def watching(
        self, *, event_names: Iterable[str] = (), property_keys: Iterable[str] = ()
    ) -> list[Segment]:
        """The segments that read any of these event names or contact property keys."""
        found: dict[str, Segment] = {}
        for name in event_names:
            for segment in self._by_event.get(name, ()):
                found[segment.id] = segment
        for key in property_keys:
            for segment in self._by_property.get(key, ()):
                found[segment.id] = segment
        return list(found.values())

    def reads_event(self, name: str) -> bool:
        return name in self._by_event

    def reads_property(self, key: str) -> bool:
        return key in self._by_property

    def all(self) -> list[Segment]:
        return list(self._segments.values())

    def get(self, segment_id: str) -> Segment | None:
        return self._segments.get(segment_id)

    def level(self, segment_id: str) -> int:
        return self._levels.get(segment_id, 0)

    def in_dependency_order(self, segments: Iterable[Segment] | None = None) -> list[Segment]:
        chosen = self.all() if segments is None else list(segments)
        return sorted(chosen, key=lambda s: self.level(s.id))

    def dependents(self, segment_ids: Iterable[str]) -> list[Segment]:
        """Segments that read any of these (directly)."""
        wanted = set(segment_ids)
        return [s for s in self._segments.values() if not s.references.segments.isdisjoint(wanted)]


registry = SegmentRegistry()


def segment_get(segment_id: str) -> Segment:
    """The segment defined with this id; raises `UnknownSegment` if no module defines it."""
    segment = registry.get(segment_id)
    if segment is None:
        raise UnknownSegment(segment_id)
    return segment


def load_segment_modules(paths: Iterable[str] | None = None) -> None:
    """Import the modules that define segments (`HOGSEND_SEGMENT_MODULES`) and register their
    `SEGMENTS`."""
    segments: list[Segment] = []
    for path in paths if paths is not None else settings.HOGSEND_SEGMENT_MODULES:
        module = importlib.import_module(path)
        segments.extend(getattr(module, "SEGMENTS", ()))
    registry.register(*segments)
