"""The crash trials' fault point (emails.delivery): a file naming an address fires only on a send to
that address, so a run an earlier trial left in the engine cannot kill the next trial's worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REACH_FAULT_POINT = (
    "import django; django.setup(); from emails.delivery import _fault_point; _fault_point({!r})"
)


def reach(path: Path, to_email: str) -> int:
    env = {**os.environ, "EMAIL_FAULT_KILL_AFTER_SEND_FILE": str(path)}
    script = REACH_FAULT_POINT.format(to_email)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=60).returncode


@pytest.mark.parametrize("armed_for", ["", "Crashy@Example.com"])
def test_an_armed_fault_point_kills_the_sending_process_once(tmp_path, armed_for):
    path = tmp_path / "kill-after-send"
    path.write_text(armed_for)
    assert reach(path, "crashy@example.com") == -signal.SIGKILL
    assert not path.exists()
    assert reach(path, "crashy@example.com") == 0  # once: the file is gone


def test_a_fault_point_armed_for_another_address_lets_the_send_go_on(tmp_path):
    path = tmp_path / "kill-after-send"
    path.write_text("crashy@example.com")
    assert reach(path, "csm@example.com") == 0
    assert path.read_text() == "crashy@example.com"  # still armed for its own send
