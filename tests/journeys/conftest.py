from __future__ import annotations

import pytest


@pytest.fixture
def register(journey_register):
    """A short name, in these tests, for the public `journey_register` fixture of journeys.testing."""
    return journey_register


@pytest.fixture(params=["two statements", "one statement"])
def enrollment_statements(request):
    """A test run twice: as production enrolls and exits (the contact's lock, then what reads
    after it) and as the backtest's isolation does (`unraced`: enrollment in one statement, exits
    without the lock)."""
    from journeys.services import unraced

    if request.param == "two statements":
        yield request.param
        return
    if "concurrent" in request.node.name:
        pytest.skip("one statement is only for tables no other transaction writes")
    with unraced():
        yield request.param
