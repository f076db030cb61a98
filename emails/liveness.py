"""The liveness seam: whether the run an email belongs to may still send.

The emails app renders, checks consent and delivers; it never reads a journey run. An email row
only carries the id of the run it was sent for, and the send pipeline asks the installed liveness
whether that run may still send. The journeys app installs its answer at start-up
(`journeys.apps`); with nothing installed every run may send (there are no runs to stop).
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class RunLiveness(Protocol):
    def hold_sql(self) -> str | None:
        """A SELECT of the run's status that locks its row until commit (`FOR UPDATE`), taking the
        run's id as `%(run_id)s`: the send runs it inside the one statement that reads everything
        it decides on, so no exit can land between this check and the queued row. None: there is
        no run to lock."""
        ...

    def held(self, *, run_id: UUID, status: str | None) -> None:
        """Raise the owner's error if a run whose status `hold_sql` read may no longer send."""
        ...

    def refusal(self, *, run_id: UUID) -> str | None:
        """Why the run may no longer send (a `run_not_live:<status>` reason), or None if it may."""
        ...


class EveryRunLive:
    def hold_sql(self) -> str | None:
        return None

    def held(self, *, run_id: UUID, status: str | None) -> None:
        return None

    def refusal(self, *, run_id: UUID) -> str | None:
        return None


_liveness: RunLiveness = EveryRunLive()


def liveness() -> RunLiveness:
    return _liveness


def install_liveness(new: RunLiveness | None) -> RunLiveness:
    """Install the answer (journeys does at start-up); returns the previous one to restore later."""
    global _liveness
    previous, _liveness = _liveness, new or EveryRunLive()
    return previous
