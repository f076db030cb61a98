"""bin/bench: which phases each round runs, and the rounds it accepts."""

import argparse

import pytest

from bench.run import Round, round_phases


def test_the_first_round_runs_every_selected_phase_and_later_rounds_only_the_triggering_load():
    selected = ["parked", "trigger", "ingest"]
    assert round_phases(selected, 0) == ["ingest", "trigger", "parked"]
    assert round_phases(selected, 1) == ["trigger"]
    assert round_phases(["ingest"], 1) == []
    assert round_phases(["parked"], 0) == ["parked"]


def test_rounds_name_workers_the_relay_apart_and_the_engine_settings():
    assert Round.parse("2") == Round(workers=2, relay_apart=False)
    assert Round.parse("1+relay+runs+lean") == Round(
        workers=1, relay_apart=True, start_mode="runs", lean_engine=True
    )
    for bad in ("two", "1+fast", "1+events+runs"):
        with pytest.raises(argparse.ArgumentTypeError, match=bad.replace("+", r"\+")):
            Round.parse(bad)
