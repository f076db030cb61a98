"""The README's recipe examples run as written against a running server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from contacts.models import Contact, Event
from contacts.services import api_key_create
from journeys.models import Digest

pytestmark = pytest.mark.django_db(transaction=True)
README = Path(__file__).resolve().parents[3] / "README.md"


def recipe_blocks() -> list[str]:
    section = README.read_text().split("\n## Recipes\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    # The first block makes the key and names the server: the test supplies both.
    assert "create_api_key" in blocks[0]
    return blocks[1:]


def test_every_recipe_example_runs_as_written(live_server):
    _, secret = api_key_create(name="readme", scopes=["ingest"])
    env = {**os.environ, "HOGSEND_API_KEY": secret, "HOGSEND_URL": live_server.url}
    blocks = recipe_blocks()
    assert len(blocks) == 4

    for block in blocks:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, (block, run.stdout, run.stderr)

    assert sorted(Event.objects.values_list("name", flat=True)) == sorted(
        ["offer.proposed", "approval.granted", "ticket.resolved", "lead.captured", "lead.context"]
        + ["comment.created"] * 3
    )
    (digest,) = Digest.objects.filter(journey_id="comment-digest")  # the three comments, one digest
    assert (digest.contact.user_id, digest.item_count) == ("user-42", 3)
    assert Contact.objects.get(user_id="lead-7").properties == {
        "name": "Grace Hopper",
        "company": "Cobol Inc.",
    }
