"""The Hatchet SDK logs no line per task run unless HATCHET_TASK_LOG asks; its other lines stay."""

from __future__ import annotations

import logging

import pytest

from journeys.runtime.engine import hatchet_client, reset_client


@pytest.fixture
def sdk_records():
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    sdk = logging.getLogger("hatchet")
    handler = Keep()
    sdk.addHandler(handler)
    yield records
    sdk.removeHandler(handler)
    reset_client()


def _log_like_the_sdk() -> None:
    sdk = logging.getLogger("hatchet")
    sdk.info("run: start step: journey-welcome:run/1234")
    sdk.info("finished step run: journey-welcome:run/1234")
    sdk.info("'hogsend-worker' started, waiting for tasks...")
    sdk.warning("THE TIME TO START THE TASK RUN IS TOO LONG")


def test_the_sdk_logs_no_line_per_task_once_the_client_is_made(settings, sdk_records):
    settings.HATCHET_TASK_LOG = False
    reset_client()
    hatchet_client()

    _log_like_the_sdk()

    assert [r.getMessage() for r in sdk_records] == [
        "'hogsend-worker' started, waiting for tasks...",
        "THE TIME TO START THE TASK RUN IS TOO LONG",
    ]


def test_hatchet_task_log_keeps_the_per_task_lines(settings, sdk_records):
    settings.HATCHET_TASK_LOG = True
    reset_client()
    hatchet_client()

    _log_like_the_sdk()

    assert len(sdk_records) == 4
