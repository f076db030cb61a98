"""The README's client examples run as written against a running server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contacts.models import Event

pytestmark = pytest.mark.django_db(transaction=True)
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(language: str, section: str) -> str:
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)
    assert blocks, f"no {language} block under '## {section}'"
    return blocks[0]


def test_the_python_example_runs_as_written(live_server, api_key, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_block("python", "Clients"))
    env = {**os.environ, "HOGSEND_API_KEY": api_key, "HOGSEND_URL": live_server.url}

    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr
    assert "422" in run.stdout and "userEmail" in run.stdout
    assert set(Event.objects.values_list("name", flat=True)) == {
        "csm.contacted",
        "feature.used",
        "plan.upgraded",
        "meeting.booked",
    }


def test_the_javascript_example_runs_as_written(js_package, live_server, api_key, tmp_path):
    # The reader's project: the package installed from the checkout, as `npm install <folder>` does.
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "hogsend-client").symlink_to(js_package)
    script = tmp_path / "example.mjs"
    script.write_text(readme_block("js", "Clients"))
    env = {**os.environ, "HOGSEND_API_KEY": api_key, "HOGSEND_URL": live_server.url}

    run = subprocess.run(
        ["node", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert "422" in run.stdout and "userEmail" in run.stdout
    assert set(Event.objects.values_list("name", flat=True)) == {
        "csm.contacted",
        "feature.used",
        "plan.upgraded",
    }
