"""The hot paths' positional model construction gives what the keyword path gives."""

import uuid

from django.utils import timezone

from contacts.rows import unsaved
from emails.models import EmailLog
from journeys.models import JourneyRun


def _values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_unsaved_matches_the_keyword_constructor_field_for_field():
    now = timezone.now()
    given = {
        "id": uuid.uuid4(),
        "idempotency_key": "k",
        "to_email": "a@example.com",
        "contact_id": uuid.uuid4(),
        "template": "activation/welcome",
        "props": {"plan": "pro"},
        "status": EmailLog.Status.QUEUED,
        "created_at": now,
    }
    positional, keyword = unsaved(EmailLog, **given), EmailLog(**given)
    assert _values(positional) == _values(keyword)
    assert positional._state.adding and positional._state.db is None
    run = unsaved(JourneyRun, id=given["id"], journey_id="j", contact_id=given["contact_id"], entered_at=now)
    assert _values(run) == _values(
        JourneyRun(id=given["id"], journey_id="j", contact_id=given["contact_id"], entered_at=now)
    )
