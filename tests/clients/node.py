"""npm in the TypeScript client's package (clients/js)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js"


def npm(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    executable = shutil.which("npm")
    if executable is None:
        pytest.fail("npm is not installed; bin/bootstrap installs Debian's nodejs and npm packages")
    return subprocess.run(
        [executable, *args],
        cwd=PACKAGE,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
