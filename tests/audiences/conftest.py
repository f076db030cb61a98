from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from audiences.segments import Segment, registry


@contextmanager
def segments_defined(*segments: Segment) -> Iterator[None]:
    """Register ad-hoc segments for a block (the shipped ones stay)."""
    registry.register(*segments)
    try:
        yield
    finally:
        for segment in reversed(segments):
            registry.unregister(segment.id)


@pytest.fixture
def define():
    """`define(segment, ...)`: registered for this test only."""
    added: list[Segment] = []

    def register(*segments: Segment) -> None:
        registry.register(*segments)
        added.extend(segments)

    yield register
    for segment in reversed(added):
        registry.unregister(segment.id)


@pytest.fixture
def only_segments():
    """`only_segments(segment, ...)`: these and no other for this test (shipped ones put aside)."""
    saved = registry.all()

    def use(*segments: Segment) -> None:
        registry.replace(segments)

    yield use
    registry.replace(saved)
