from __future__ import annotations

import pytest


@pytest.fixture
def register(journey_register):
    """A short name, in these tests, for the public `journey_register` fixture of journeys.testing."""
    return journey_register
