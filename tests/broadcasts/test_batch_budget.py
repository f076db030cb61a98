"""A broadcast batch's statements do not grow with its size, but for the one hand-over per email.

Everything a batch decides is set-based: the claim, the pace, the broadcast's lock, the rows already
under their keys, the suppressions, the contacts, one insert of the email rows, one update of the
outcomes (with the email ids). Delivery takes one statement per email, which records the
previous email's `sent` and claims this one: a row is `sending` only during its own provider call,
so a worker killed mid-batch leaves at most one email whose outcome is unknown (the claim must be
committed before the call, and the record before the next one; see test_worker_killed.py).
Savepoints are left out (the test's transaction nests the batch's). The lifecycle hooks' "nobody
listens" memory is emptied first and made to outlast the batch, so the count never depends on timing
(a batch longer than that second looks the destinations up again, once a second).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from broadcasts.send import batch_send, recipients_claim
from broadcasts.services import broadcast_create
from broadcasts.templates import ANNOUNCEMENT
from emails.models import EmailLog
from integrations import lifecycle as integrations_lifecycle
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS

pytestmark = pytest.mark.django_db

# The broadcast's lock; the rows under the batch's keys, the suppressions, the contacts; the insert
# and the read of the rows by key; the last email's `sent`; the recipients' outcomes and email ids
# (the ids used to be written in a statement of their own, before the delivery); the destinations lookup (none at all: it answers email.sent too, for a second).
# At the budget, not under it.
BATCH_BUDGET = 9
HAND_OVER = "WITH recorded AS"


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.parametrize("size", [3, 30])
def test_a_batch_takes_the_same_statements_whatever_its_size_and_one_hand_over_per_email(
    people, smtp_server, monkeypatch, size
):
    people(size, properties={"plan": "pro"})
    broadcast = broadcast_create(
        name="Dark mode", template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS,
        conditions=[{"property": "plan", "operator": "eq", "value": "pro"}], rate=0,
    )  # fmt: skip
    claimed = recipients_claim(broadcast_id=broadcast.pk, size=size)
    assert len(claimed) == size

    integrations_lifecycle._nobody_listens.clear()
    monkeypatch.setattr(integrations_lifecycle, "NOBODY_LISTENS_SECONDS", 3600.0)
    with CaptureQueriesContext(connection) as captured:
        counts = batch_send(broadcast=broadcast, claimed=claimed)

    assert counts == {"sent": size}
    assert len(smtp_server.envelopes) == size
    statements = _statements(captured)
    hand_overs = [sql for sql in statements if sql.lstrip().startswith(HAND_OVER)]
    rest = [sql for sql in statements if not sql.lstrip().startswith(HAND_OVER)]
    report = "\n".join(f"{i + 1:3}. {sql.strip()[:160]}" for i, sql in enumerate(rest))
    assert len(rest) == BATCH_BUDGET, report
    assert len(hand_overs) == size
    assert EmailLog.objects.filter(status="sent").count() == size
