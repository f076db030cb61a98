"""The journey registry: every journey the code defines, filtered by `ENABLED_JOURNEYS`."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable, Iterator

from django.conf import settings

from journeys.definition import DurableTask, Journey, JourneyDefinitionError


class JourneyRegistry:
    def __init__(self) -> None:
        self._journeys: dict[str, Journey] = {}
        self._tasks: dict[str, DurableTask] = {}
        # Earlier versions a team keeps in its code so runs that started on them finish on them.
        self._kept: dict[tuple[str, str], Journey] = {}

    def register(self, *items: Journey | DurableTask) -> None:
        for item in items:
            if isinstance(item, Journey):
                if item.id in self._journeys and self._journeys[item.id] is not item:
                    raise JourneyDefinitionError(f"two journeys share the id {item.id!r}")
                self._journeys[item.id] = item
            else:
                self._tasks[item.name] = item

    def unregister(self, journey_id: str) -> None:
        self._journeys.pop(journey_id, None)
        self._kept = {key: j for key, j in self._kept.items() if key[0] != journey_id}

    def keep(self, *journeys: Journey) -> None:
        """Keep earlier versions of journeys (a module's `KEPT_VERSIONS`): a run that enrolled
        under one replays and finishes on it, while new runs take the journey as defined now."""
        from journeys.versions import journey_version

        for journey in journeys:
            self._kept[(journey.id, journey_version(journey))] = journey

    @contextlib.contextmanager
    def isolated(self, *journeys: Journey) -> Iterator[None]:
        """Only these journeys are defined (no tasks, no kept versions) inside the block; the
        registry is as it was afterwards. A backtest replays one journey alone."""
        saved = self._journeys, self._tasks, self._kept
        self._journeys, self._tasks, self._kept = {j.id: j for j in journeys}, {}, {}
        try:
            yield
        finally:
            self._journeys, self._tasks, self._kept = saved

    def kept(self, journey_id: str) -> dict[str, Journey]:
        """The kept earlier versions of a journey, by version."""
        return {version: j for (jid, version), j in self._kept.items() if jid == journey_id}

    def for_version(self, journey: Journey, version: str) -> Journey:
        """What a run that enrolled under `version` runs on: that kept version if there is one,
        else the journey as defined now."""
        return self._kept.get((journey.id, version), journey) if version else journey

    def all(self) -> list[Journey]:
        """Every defined journey, loaded or not, in definition order."""
        return list(self._journeys.values())

    def loaded(self) -> list[Journey]:
        """The journeys `ENABLED_JOURNEYS` lets this process run (`*` or a comma list of ids)."""
        spec = (settings.ENABLED_JOURNEYS or "*").strip()
        if spec == "*":
            return self.all()
        wanted = {part.strip() for part in spec.split(",") if part.strip()}
        return [j for j in self._journeys.values() if j.id in wanted]

    def get(self, journey_id: str) -> Journey | None:
        return self._journeys.get(journey_id)

    def triggered_by(self, event_name: str) -> list[Journey]:
        return [j for j in self.loaded() if j.trigger.event == event_name]

    def tasks(self) -> list[DurableTask]:
        return list(self._tasks.values())

    def tasks_for(self, event_name: str) -> list[DurableTask]:
        return [t for t in self._tasks.values() if event_name in t.on_events]

    def exit_events(self) -> set[str]:
        return {rule.event for j in self.all() for rule in j.exit_on}


registry = JourneyRegistry()


def load_journey_modules(paths: Iterable[str] | None = None) -> None:
    """Import the modules that define journeys (`HOGSEND_JOURNEY_MODULES`) and register them, with
    the earlier versions they keep (`KEPT_VERSIONS`)."""
    for path in paths if paths is not None else settings.HOGSEND_JOURNEY_MODULES:
        module = importlib.import_module(path)
        registry.register(*getattr(module, "JOURNEYS", ()), *getattr(module, "TASKS", ()))
        registry.keep(*getattr(module, "KEPT_VERSIONS", ()))
