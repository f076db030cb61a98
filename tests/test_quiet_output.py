"""The suite's output is pytest's own: no test writes past output capture (an email's HTML, a
report), so `bin/test -q` shows progress and failures only; what a test wants kept for a person
goes to artifacts/, beside the browser tests' screenshots."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BYPASS = re.compile(r"\b(capsys|capfd|capsysbinary|capfdbinary)\.disabled\(|sys\.__stdout__|sys\.__stderr__")


def test_no_test_writes_past_output_capture():
    offenders = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BYPASS.search(line)
    ]
    assert offenders == [], "write it to artifacts/ instead:\n" + "\n".join(offenders)
