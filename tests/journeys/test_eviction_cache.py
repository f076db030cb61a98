"""The worker's eviction cache: the SDK's answers, without walking every held run."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hatchet_sdk.runnables.eviction import EvictionPolicy
from hatchet_sdk.worker.durable_eviction import manager as sdk_manager
from hatchet_sdk.worker.durable_eviction.cache import DurableEvictionCache, DurableRunRecord

from journeys.runtime.eviction import IndexedEvictionCache, install_indexed_eviction_cache
from journeys.runtime.worker import JOURNEY_EVICTION

POLICIES = [
    JOURNEY_EVICTION,
    EvictionPolicy(ttl=timedelta(seconds=30), allow_capacity_eviction=True, priority=0),
    EvictionPolicy(ttl=timedelta(minutes=5), allow_capacity_eviction=False, priority=1),
    EvictionPolicy(ttl=None, allow_capacity_eviction=True, priority=0),
    None,
]


def _select(cache: DurableEvictionCache, now: datetime, slots: int) -> tuple[str | None, str | None]:
    key = cache.select_eviction_candidate(
        now=now, durable_slots=slots, reserve_slots=2, min_wait_for_capacity_eviction=timedelta(seconds=10)
    )
    return key, (cache.get(key).eviction_reason if key else None)


@pytest.mark.parametrize("seed", range(12))
def test_it_answers_as_the_sdks_cache_does_for_the_same_operations(seed: int) -> None:
    rng = random.Random(seed)
    ours, theirs = IndexedEvictionCache(), DurableEvictionCache()
    now = datetime(2026, 3, 29, tzinfo=UTC)
    keys = [f"run-{i}/0" for i in range(60)]
    slots = rng.choice([0, 8, 14, 40])
    # Odd seeds move the clock far enough for time to live to decide; even seeds keep every run
    # younger than any time to live, so capacity decides.
    steps = [0.5, 1, 3, 20, 90] if seed % 2 else [0.2, 0.5, 1, 2]
    for _ in range(2000 if seed % 2 else 1500):
        now += timedelta(seconds=rng.choice(steps))  # never two operations at one moment
        key = rng.choice(keys)
        op = rng.random()
        for cache in (ours, theirs):
            if op < 0.25:
                cache.register_run(
                    key, f"step-{key[:6]}", 1, now, POLICIES[int(key[4:].split("/")[0]) % len(POLICIES)]
                )
            elif op < 0.55:
                cache.mark_waiting(key, now, "sleep", "r")
            elif op < 0.75:
                cache.mark_active(key, now)
            elif op < 0.82:
                cache.unregister_run(key)
        if op >= 0.82:
            chosen = _select(ours, now, slots)
            assert chosen == _select(theirs, now, slots)
            if chosen[0] and rng.random() < 0.7:  # the manager evicts what it chose
                ours.unregister_run(chosen[0])
                theirs.unregister_run(chosen[0])
        step = f"step-{key[:6]}"
        assert ours.find_key_by_step_run_id(step) == theirs.find_key_by_step_run_id(step)
        assert {r.key for r in ours.get_all_waiting()} == {r.key for r in theirs.get_all_waiting()}


def test_choosing_a_candidate_reads_one_run_per_policy_not_every_held_run(monkeypatch) -> None:
    """20,000 parked journeys, none due: the SDK's cache asks every one of them whether it waits."""
    asked = []
    original = DurableRunRecord.is_waiting
    monkeypatch.setattr(
        DurableRunRecord, "is_waiting", property(lambda r: asked.append(1) or original.fget(r))
    )
    cache = IndexedEvictionCache()
    now = datetime(2026, 3, 29, tzinfo=UTC)
    for i in range(20_000):
        cache.register_run(f"run-{i}/0", f"step-{i}", 1, now, JOURNEY_EVICTION)
        cache.mark_waiting(f"run-{i}/0", now + timedelta(microseconds=i), "sleep", "r")
    asked.clear()

    def choose(at: datetime, slots: int) -> str | None:
        return cache.select_eviction_candidate(
            now=at, durable_slots=slots, reserve_slots=0, min_wait_for_capacity_eviction=timedelta(seconds=10)
        )

    later = now + timedelta(minutes=1)
    # Capacity pressure: all 20,000 slots wait, so the oldest goes first.
    assert choose(later, 20_000) == "run-0/0"
    assert choose(later, 40_000) is None
    assert choose(now + JOURNEY_EVICTION.ttl + timedelta(microseconds=5), 40_000) == "run-0/0"
    assert len(asked) < 10
    assert cache.find_key_by_step_run_id("step-19999") == "run-19999/0"


def test_the_worker_makes_the_sdks_manager_build_the_indexed_cache(monkeypatch) -> None:
    monkeypatch.setattr(sdk_manager, "DurableEvictionCache", DurableEvictionCache)
    install_indexed_eviction_cache()
    manager = sdk_manager.DurableEvictionManager(
        durable_slots=10, cancel_local=lambda key: None, request_eviction_with_ack=None
    )
    assert isinstance(manager.cache, IndexedEvictionCache)
