"""The Hatchet SDK's per-task log lines, dropped unless HATCHET_TASK_LOG is set."""

from __future__ import annotations

import logging

# The Hatchet SDK logs these at INFO for every task run a worker starts and finishes (its logger,
# "hatchet", writes to stdout itself). Its other lines, such as the worker's "waiting for tasks"
# that tells a supervisor it is ready, and every warning and error, still show.
SDK_PER_TASK_PREFIXES = ("run: start step", "finished step run", "rx: start step run", "run: start batch")


class SdkPerTaskLines(logging.Filter):
    """Drops the SDK's per-task INFO lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and isinstance(record.msg, str)
            and record.msg.startswith(SDK_PER_TASK_PREFIXES)
        )


def sdk_logging_configure(*, task_lines: bool) -> None:
    """Called when the engine client is made (the SDK's logger exists from then on)."""
    sdk = logging.getLogger("hatchet")
    for existing in [f for f in sdk.filters if isinstance(f, SdkPerTaskLines)]:
        sdk.removeFilter(existing)
    if not task_lines:
        sdk.addFilter(SdkPerTaskLines())
