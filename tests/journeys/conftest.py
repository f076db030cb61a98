from __future__ import annotations

import pytest


@pytest.fixture
def register(journey_register):
    """A short name, in these tests, for the public `journey_register` fixture of journeys.testing."""
    return journey_register


@pytest.fixture(params=["two statements", "one statement"])
def enrollment_statements(request):
    """A test run twice: as production enrolls (the contact's lock and the guards, then the
    insert) and as the backtest's isolation does (`enrollment_unraced`: one statement)."""
    from journeys.services import enrollment_unraced

    if request.param == "two statements":
        yield request.param
        return
    if "concurrent" in request.node.name:
        pytest.skip("one statement is only for tables no other transaction writes")
    with enrollment_unraced():
        yield request.param
