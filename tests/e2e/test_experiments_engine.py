"""A journey with ctx.variant and a holdout, on a real Hatchet engine with a real SMTP sink."""

from __future__ import annotations

import uuid

import pytest

from contacts.models import Contact
from emails.models import EmailLog
from journeys.experiments import is_held_out
from journeys.models import GoalConversion, VariantExposure
from journeys.registry import registry
from tests.e2e.conftest import DAY, wait_until
from tests.e2e.test_journeys_on_engine import post, subjects, wait_for_run

pytestmark = [pytest.mark.engine, pytest.mark.flaky(reruns=1, reruns_delay=2)]


def _contact(user_id: str, *, held_out: bool) -> Contact:
    """A contact whose id puts it inside (or outside) the journey's holdout."""
    journey = registry.get("e2e-experiment")
    while True:
        contact_id = uuid.uuid4()
        if is_held_out(journey=journey, contact_id=contact_id) == held_out:
            return Contact.objects.create(id=contact_id, user_id=user_id, email=f"{user_id}@example.com")


def test_the_holdout_contact_gets_no_email_and_the_other_gets_its_arm_on_the_engine(api, live, smtp):
    _contact("exp-held", held_out=True)
    _contact("exp-sent", held_out=False)
    post(api, "e2e.experiment", "exp-held")
    post(api, "e2e.experiment", "exp-sent")

    sent = wait_for_run("e2e-experiment", "exp-sent", "completed", timeout=30 * DAY)
    held = wait_for_run("e2e-experiment", "exp-held", "completed", timeout=30 * DAY)
    wait_until(lambda: subjects(smtp, "exp-sent"), timeout=10, what="the treated contact's email")

    arm = VariantExposure.objects.get(run=sent).arm
    assert subjects(smtp, "exp-sent") == [f"arm {arm} {arm}"]  # the second call keeps the run's arm
    assert subjects(smtp, "exp-held") == []
    assert held.held_out and not sent.held_out
    assert list(EmailLog.objects.filter(run=held).values_list("status", "status_reason")) == [
        ("skipped", "held_out")
    ]
    assert VariantExposure.objects.filter(run__in=[sent, held]).count() == 2

    post(api, "e2e.converted", "exp-held")
    assert GoalConversion.objects.get(run=held).event.name == "e2e.converted"
