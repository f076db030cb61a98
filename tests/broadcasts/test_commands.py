"""`manage.py broadcast_send` creates a broadcast; `broadcast_progress` shows where it stands."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from broadcasts.models import Broadcast
from broadcasts.send import broadcast_drain
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_send_then_follow_a_broadcast_from_the_command_line(people, smtp_server):
    people(2, properties={"plan": "pro"})
    people(1, properties={"plan": "pro"}, unsubscribed_at="2026-01-01T00:00:00Z")
    created = run("broadcast_send", "Dark mode", "--template", "broadcasts/announcement",
                  "--props", json.dumps(ANNOUNCEMENT_PROPS), "--rate", "0",
                  "--filter", '[{"property": "plan", "operator": "eq", "value": "pro"}]')  # fmt: skip
    assert "running, 3 recipients" in created
    broadcast = Broadcast.objects.get()
    assert "remaining 3" in run("broadcast_progress", str(broadcast.pk), "--once")

    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    followed = run("broadcast_progress")  # the newest; it is completed, so the bar ends at once
    assert "completed: sent 2, held 0, skipped unsubscribed 1, remaining 0" in followed
    assert "report: delivered 0, bounced 0" in followed
    data = json.loads(run("broadcast_progress", "--json"))
    assert data["progress"]["skipped"] == {"unsubscribed": 1}


def test_an_unknown_template_is_refused_naming_the_option():
    with pytest.raises(CommandError, match="--template: unknown email template 'nope'"):
        run("broadcast_send", "x", "--template", "nope")
