"""A real headless Chromium logs in through the admin form and visits every Studio page, served as
`bin/run` serves them (gunicorn, DEBUG off, WhiteNoise over collected static files)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from contacts.models import AuditEntry, Event, Suppression
from contacts.services import api_key_create
from emails.models import EmailLog
from journeys.registry import registry
from journeys.testing import JourneyHarness
from tests.studio.conftest import make_studio_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")


@pytest.fixture
def seeded(operator):
    # The harness freezes the clock; leave it before the browser gets a session cookie.
    with JourneyHarness() as harness:
        data = make_studio_data(harness)
    Suppression.objects.create(email="gone@example.com", reason="bounce", note="mailbox full")
    api_key_create(name="ci", scopes=["ingest"])
    AuditEntry.objects.create(
        actor=operator, actor_label="operator", action="journey.disable", target_type="journey",
        target_id="activation-welcome",
    )  # fmt: skip
    return data


def test_an_operator_walks_through_studio(studio_browser, seeded):
    studio = studio_browser
    data = seeded
    studio.login()
    page = studio.page
    assert page.locator("a", has_text="Journeys").first.is_visible()

    studio.visit(reverse("admin:studio_journeys"), shot="studio-journeys.png", selector="#studio-journeys")
    assert page.locator("#studio-journeys tbody tr").count() == len(registry.all())

    studio.visit(
        reverse("admin:studio_journey", args=["activation-welcome"]),
        shot="studio-journey.png",
        selector="svg.journey-map",
    )
    sleep_node = page.locator('svg.journey-map a.map-node[data-node="sleep:post-welcome"]')
    assert sleep_node.get_attribute("data-parked") == "1"
    assert page.locator("svg.journey-map a.map-node").count() >= 5
    sleep_node.click()  # the runs parked there, each linking to its run page
    page.wait_for_selector("#parked-runs")
    studio.check(shot="studio-journey-map-node.png")
    page.click(f"#parked-runs a[href$='/{data['sleeping'].pk}/change/']")
    page.wait_for_selector("#run-timeline")
    assert "post-welcome" in page.locator("#run-timeline").inner_text()
    studio.visit(reverse("admin:studio_journey", args=["activation-welcome"]), shot="studio-journey.png")

    # Disable from the page: a real POST with the CSRF token from the form.
    page.click("input[value='Disable this journey']")
    page.wait_for_selector("#journey-state")
    assert page.locator("#journey-state").inner_text() == "disabled"
    page.click("input[value='Re-enable this journey']")
    page.wait_for_selector("#journey-state")
    assert page.locator("#journey-state").inner_text() == "enabled"
    studio.check(shot="studio-journey-reenabled.png")

    studio.visit(
        reverse("admin:journeys_journeyrun_changelist"), shot="studio-runs.png", selector="#result_list"
    )
    assert page.locator("#result_list tbody tr").count() == 4
    studio.visit(
        reverse("admin:journeys_journeyrun_change", args=[data["waiting"].pk]),
        shot="studio-run-waiting.png",
        selector="#run-timeline",
    )
    assert "await-csm" in page.locator("#run-timeline").inner_text()
    studio.visit(
        reverse("admin:journeys_journeyrun_change", args=[data["failed"].pk]),
        shot="studio-run-failed.png",
    )

    studio.visit(
        reverse("admin:contacts_contact_change", args=[data["ada"].pk]),
        shot="studio-contact.png",
        selector="#consent",
    )
    assert "ada@example.com" in page.locator("#contact-email").inner_text()
    studio.visit(reverse("admin:contacts_contact_import"), shot="studio-contacts-import-form.png")

    email = EmailLog.objects.filter(to_email="ada@example.com").first()
    studio.visit(
        reverse("admin:emails_emaillog_changelist"), shot="studio-email-log.png", selector="#result_list"
    )
    studio.visit(
        reverse("admin:emails_emaillog_change", args=[email.pk]),
        shot="studio-email.png",
        selector="#email-preview",
    )
    # The message as sent: the HTML in a sandboxed frame, its headers, text part and links.
    assert "Welcome" in page.frame_locator("#email-preview").locator("body").inner_text()
    assert page.locator("#email-preview").get_attribute("sandbox") == ""
    headers = page.locator("#sent-headers").inner_text()
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"):
        assert name in headers
    assert "List-Unsubscribe=One-Click" in headers
    assert "Welcome" in page.locator("#sent-text").inner_text()
    assert "unsubscribe" in page.locator("#sent-links").inner_text()
    assert page.locator("#sent-links li.tracked-link").count() >= 1

    studio.visit(reverse("admin:studio_templates"), shot="studio-templates.png")
    studio.visit(
        reverse("admin:studio_template", args=["activation/welcome"]),
        shot="studio-template.png",
        selector="#email-preview",
    )
    studio.visit(reverse("admin:studio_operations"), shot="studio-operations-empty.png")
    studio.visit(reverse("admin:integrations_webhook_sources"), shot="studio-webhook-sources.png")
    event = Event.objects.order_by("-occurred_at").first()
    studio.visit(reverse("admin:contacts_event_change", args=[event.pk]), shot="studio-event.png")


def test_every_model_page_of_the_studio_loads_styled(studio_browser, seeded):
    """Every changelist and add page the Studio registers, and the first object's change page."""
    studio = studio_browser
    studio.login()
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        name = f"studio-{meta.app_label}-{meta.model_name}"
        studio.visit(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"), shot=f"{name}-list.png")
        if model_admin.has_add_permission(_request_for(studio)):
            studio.visit(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"), shot=f"{name}-add.png")
        first = model.objects.order_by("pk").first()
        if first is not None:
            studio.visit(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]),
                shot=f"{name}-change.png",
            )


def _request_for(studio):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="operator")
    return request
