"""A real headless Chromium on the production-shaped server opens the broadcasts list and a
broadcast's page, then pauses a running broadcast with the page's own form."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from broadcasts import services
from broadcasts.models import Broadcast
from broadcasts.send import broadcast_drain
from broadcasts.templates import ANNOUNCEMENT
from contacts.models import Contact, Suppression
from emails.models import EmailLog
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PRO = [{"property": "plan", "operator": "eq", "value": "pro"}]


@pytest.fixture
def seeded(django_user_model, monkeypatch):
    """A finished broadcast with a report, a running one and a scheduled one; the drains are
    run here, not handed to Celery."""
    monkeypatch.setattr("broadcasts.tasks.broadcast_drains_enqueue", lambda **_: None)
    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    for i in range(6):
        Contact.objects.create(user_id=f"u{i}", email=f"person{i}@example.com", properties={"plan": "pro"})
    Suppression.objects.create(email="person5@example.com", reason="bounce")
    done = services.broadcast_create(
        name="Dark mode is here", template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, conditions=PRO, rate=0
    )
    broadcast_drain(broadcast_id=done.pk, seconds=30)
    now = timezone.now()
    logs = EmailLog.objects.filter(idempotency_key__startswith=f"broadcast:{done.pk}:").order_by("id")
    ids = list(logs.values_list("id", flat=True))
    EmailLog.objects.filter(id__in=ids[:4]).update(delivered_at=now)
    EmailLog.objects.filter(id__in=ids[:3]).update(opened_at=now)
    EmailLog.objects.filter(id__in=ids[:1]).update(clicked_at=now)
    EmailLog.objects.filter(id__in=ids[4:]).update(bounced_at=now)
    running = services.broadcast_create(
        name="Spring sale", template=ANNOUNCEMENT, props=ANNOUNCEMENT_PROPS, rate=5
    )
    services.broadcast_create(
        name="Winter digest", journey_id="activation-welcome", conditions=PRO,
        send_at=now.replace(year=now.year + 1),
    )  # fmt: skip
    return {"done": Broadcast.objects.get(pk=done.pk), "running": running}


def test_an_operator_reads_and_pauses_broadcasts(studio_browser, seeded):
    studio = studio_browser
    studio.login()
    page = studio.page

    studio.visit(
        reverse("admin:studio_broadcasts"), shot="studio-broadcasts.png", selector="#studio-broadcasts"
    )
    assert page.locator("#studio-broadcasts tbody tr").count() == 3

    done = seeded["done"]
    studio.visit(
        reverse("admin:studio_broadcast", args=[done.pk]),
        shot="studio-broadcast.png",
        selector="#broadcast-report",
    )
    assert page.locator("#broadcast-status").get_attribute("data-status") == "completed"
    assert page.locator("[data-count=sent]").inner_text() == "5"
    assert page.locator("[data-count=skipped]").inner_text() == "1"
    assert page.locator("[data-report=delivered]").inner_text() == "4"
    assert page.locator("svg.broadcast-report-chart rect").count() == 6

    running = seeded["running"]
    studio.visit(reverse("admin:studio_broadcast", args=[running.pk]), shot="studio-broadcast-running.png")
    page.click("#broadcast-actions input[value='Pause']")
    page.wait_for_selector("#broadcast-status[data-status=paused]")
    studio.check(shot="studio-broadcast-paused.png")
    assert Broadcast.objects.get(pk=running.pk).status == "paused"

    studio.visit(
        reverse("admin:studio_broadcast_add"), shot="studio-broadcast-new.png", selector="#broadcast-form"
    )
    page.select_option("#id_template", ANNOUNCEMENT)
    page.fill("#id_props", '{"headline": "Spring"}')
    page.fill("#id_filter", '[{"property": "plan", "operator": "eq", "value": "pro"}]')
    page.click("button[value=preview]")
    page.wait_for_selector("#audience-size")
    assert page.locator("#audience-size").inner_text() == "6"
    studio.check(shot="studio-broadcast-preview.png")

    # Cancel asks first; dismissing changes nothing, accepting cancels.
    studio.visit(reverse("admin:studio_broadcast", args=[running.pk]), shot="studio-broadcast-paused.png")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#broadcast-actions input[value='Cancel']")
    assert Broadcast.objects.get(pk=running.pk).status == "paused"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#broadcast-actions input[value='Cancel']")
    page.wait_for_selector("#broadcast-status[data-status=cancelled]")
    studio.check(shot="studio-broadcast-cancelled.png")
    assert page.locator("#broadcast-actions").count() == 0
