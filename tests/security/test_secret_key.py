"""The public default SECRET_KEY is refused unless DEBUG is on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hogsend.checks import INSECURE_SECRET_KEY, refuse_insecure_settings, secret_key_check

ROOT = Path(__file__).resolve().parents[2]


def manage_check(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environment.update({"SECRET_KEY_FILE": "/nonexistent/secret_key", **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_management_commands_refuse_to_start_with_the_default_key_and_debug_off():
    result = manage_check(DEBUG="false")
    assert result.returncode != 0
    assert "hogsend.E001" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_allows_the_default_key_for_local_tinkering():
    assert manage_check(DEBUG="true").returncode == 0


def test_a_key_kept_in_the_run_directory_is_used(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("k" * 50)
    assert manage_check(DEBUG="false", SECRET_KEY_FILE=str(key_file)).returncode == 0


def test_the_web_server_entry_point_refuses_the_default_key(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = INSECURE_SECRET_KEY
    assert [message.id for message in secret_key_check()] == ["hogsend.E001"]
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        refuse_insecure_settings()

    settings.SECRET_KEY = "a-long-random-value-nobody-else-has-0123456789"
    assert secret_key_check() == []
    refuse_insecure_settings()
