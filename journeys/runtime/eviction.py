"""The worker's record of its held durable runs, indexed so choosing one to evict costs no scan.

The SDK's eviction manager asks its cache for a candidate every second and again after each
eviction, and the SDK's cache answers by walking every run the worker holds, twice: the waiting
ones, then those past their policy's time to live. A worker holds every journey parked in the last
`JOURNEY_EVICTION.ttl` (at 50 starts a second, 15,000 runs), so each second of sustained load
walked them once per run that came of age: a cost that grows with the square of the rate, and
that the parked-runs bench saw as a worker slowing down the longer it parked runs.

`IndexedEvictionCache` keeps the same records and answers the same questions with the same
answers (`tests/journeys/test_eviction_cache.py` drives both with the same random operations),
from the waiting runs grouped by policy in the order they began to wait: within a group the oldest
is the only one that can be due first, so a candidate is the best of one run per group.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from hatchet_sdk.runnables.action import ActionKey
from hatchet_sdk.runnables.eviction import EvictionPolicy
from hatchet_sdk.worker.durable_eviction import manager as sdk_manager
from hatchet_sdk.worker.durable_eviction.cache import (
    DurableEvictionCache,
    DurableRunRecord,
    EvictionCause,
    _build_eviction_reason,
)

# A group of waiting runs: those whose policies order and age them alike.
_Group = tuple[int, timedelta | None, bool]


def _group(policy: EvictionPolicy) -> _Group:
    return (policy.priority, policy.ttl, policy.allow_capacity_eviction)


class IndexedEvictionCache(DurableEvictionCache):
    """The SDK's cache, with its waiting runs indexed by policy and age and its runs by step run."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[_Group, OrderedDict[ActionKey, DurableRunRecord]] = {}
        self._waiting_count = 0
        # Each step run's held keys in the order they were registered (a dict kept as an ordered set).
        self._by_step_run: dict[str, dict[ActionKey, None]] = {}

    # --- keeping the index ----------------------------------------------------------------------

    def _unindex(self, key: ActionKey, record: DurableRunRecord | None) -> None:
        if record is None or record.eviction_policy is None:
            return
        group = self._waiting.get(_group(record.eviction_policy))
        if group is not None and group.pop(key, None) is not None:
            self._waiting_count -= 1

    def register_run(
        self,
        key: ActionKey,
        step_run_id: str,
        invocation_count: int,
        now: datetime,
        eviction_policy: EvictionPolicy | None,
    ) -> None:
        previous = self._runs.get(key)
        self._unindex(key, previous)
        if previous is not None and previous.step_run_id != step_run_id:
            self._forget_step_run(key, previous.step_run_id)
        super().register_run(key, step_run_id, invocation_count, now, eviction_policy)
        self._by_step_run.setdefault(step_run_id, {})[key] = None

    def unregister_run(self, key: ActionKey) -> None:
        record = self._runs.get(key)
        self._unindex(key, record)
        super().unregister_run(key)
        if record is not None:
            self._forget_step_run(key, record.step_run_id)

    def _forget_step_run(self, key: ActionKey, step_run_id: str) -> None:
        keys = self._by_step_run.get(step_run_id)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_step_run[step_run_id]

    def mark_waiting(self, key: ActionKey, now: datetime, wait_kind: str, resource_id: str) -> None:
        super().mark_waiting(key, now, wait_kind, resource_id)
        record = self._runs.get(key)
        if record is None or record.eviction_policy is None or not record.is_waiting:
            return
        group = self._waiting.setdefault(_group(record.eviction_policy), OrderedDict())
        if key not in group:  # a nested wait keeps the run's place: its waiting_since is unchanged
            group[key] = record
            self._waiting_count += 1

    def mark_active(self, key: ActionKey, now: datetime) -> None:
        super().mark_active(key, now)
        record = self._runs.get(key)
        if record is not None and not record.is_waiting:
            self._unindex(key, record)

    # --- the questions --------------------------------------------------------------------------

    def get_all_waiting(self) -> list[DurableRunRecord]:
        waiting = [r for group in self._waiting.values() for r in group.values()]
        waiting += [r for r in self._runs.values() if r.is_waiting and r.eviction_policy is None]
        return waiting

    def find_key_by_step_run_id(self, step_run_id: str) -> ActionKey | None:
        keys = self._by_step_run.get(step_run_id)
        return next(iter(keys)) if keys else None

    def select_eviction_candidate(
        self,
        now: datetime,
        durable_slots: int,
        reserve_slots: int,
        min_wait_for_capacity_eviction: timedelta,
    ) -> ActionKey | None:
        # Each group's oldest run: the first of its group to pass any age the group shares.
        oldest = [(group, next(iter(runs.values()))) for group, runs in self._waiting.items() if runs]
        if not oldest:
            return None
        due = [
            r
            for (_, ttl, _), r in oldest
            if ttl is not None and r.waiting_since is not None and now - r.waiting_since >= ttl
        ]
        if due:
            chosen = min(due, key=lambda r: (r.eviction_policy.priority, r.waiting_since))
            chosen.eviction_reason = _build_eviction_reason(
                EvictionCause.TTL_EXCEEDED, chosen, ttl=chosen.eviction_policy.ttl
            )
            return chosen.key
        if not self._capacity_pressure(
            durable_slots=durable_slots, reserve_slots=reserve_slots, waiting_count=self._waiting_count
        ):
            return None
        pressed = [
            r
            for (_, _, allowed), r in oldest
            if allowed
            and r.waiting_since is not None
            and now - r.waiting_since >= min_wait_for_capacity_eviction
        ]
        if not pressed:
            return None
        chosen = min(pressed, key=lambda r: (r.eviction_policy.priority, r.waiting_since))
        chosen.eviction_reason = _build_eviction_reason(EvictionCause.CAPACITY_PRESSURE, chosen)
        return chosen.key


def install_indexed_eviction_cache() -> None:
    """Make the SDK's eviction manager, which builds its own cache when the worker takes its first
    action, build an `IndexedEvictionCache`."""
    sdk_manager.DurableEvictionCache = IndexedEvictionCache
