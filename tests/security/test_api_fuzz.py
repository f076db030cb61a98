"""Schemathesis over the whole /v1 API, in-process against the WSGI app: whatever a client sends,
no 5xx other than a documented 503, and no status code the OpenAPI document does not list.

Generation is deterministic (derandomized, no example database), so a failure reproduces. The
budget is examples per operation in the fuzzing phase (schemathesis adds its coverage phase's
fixed cases): HOGSEND_FUZZ_EXAMPLES (default 30, about 1,400 cases for CI) or, with
HOGSEND_FUZZ_FULL=1, 500 per operation — more than 10,000 cases in all (the run prints the count).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from contacts.services import api_key_create

EXAMPLES = 500 if os.environ.get("HOGSEND_FUZZ_FULL") else int(os.environ.get("HOGSEND_FUZZ_EXAMPLES", "30"))
CASES: Counter = Counter()


def no_server_error(ctx, response, case):
    """5xx only as the documented 503 (a dependency down), never a 500."""
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


@pytest.fixture
def api_schema(db):
    # As Django's test client does: keep the test's connection (and its transaction) open across
    # requests, so every case's writes are rolled back at the end.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def every_scope(settings) -> dict[str, str]:
    # Set once per operation, not per case: each assignment through pytest-django's `settings`
    # nests another override, and thousands of them make every settings read slow.
    settings.INGEST_RATE_LIMIT_REQUESTS = 0  # the fuzzer is not a client to throttle
    settings.INGEST_RATE_LIMIT_EVENTS = 0
    _, secret = api_key_create(name="fuzz", scopes=["ingest", "read", "admin"])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    print(f"\nschemathesis: {sum(CASES.values())} cases over {len(CASES)} operations: {dict(CASES)}")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail_or_answer_an_undocumented_status(case, every_scope):
    CASES[f"{case.method} {case.path}"] += 1
    # Always a valid key, so cases reach validation and the database rather than stopping at
    # authentication (tests/security/test_api_errors.py covers bad keys).
    case.call_and_validate(
        headers=every_scope,
        checks=[
            no_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            positive_data_acceptance,
        ],
    )
