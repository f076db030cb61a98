from __future__ import annotations

import pytest

from journeys.registry import registry


@pytest.fixture
def register():
    """Register journeys or tasks for one test; they are removed afterwards."""
    added = []

    def _register(*items):
        registry.register(*items)
        added.extend(items)
        return items[0] if len(items) == 1 else items

    yield _register
    for item in added:
        if hasattr(item, "id"):
            registry.unregister(item.id)
        else:
            registry._tasks.pop(item.name, None)
