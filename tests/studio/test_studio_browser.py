"""A real headless Chromium logs in through the admin form and visits the main Studio pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from emails.models import EmailLog
from journeys.testing import JourneyHarness
from tests.studio.conftest import make_studio_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_walks_through_studio(live_server, page, artifacts_dir, django_user_model):
    # The harness freezes the clock; leave it before the browser gets a session cookie.
    with JourneyHarness() as harness:
        data = make_studio_data(harness)
    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    email = EmailLog.objects.filter(to_email="ada@example.com").first()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "correct horse")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    assert page.locator("a", has_text="Journeys").first.is_visible()
    page.screenshot(path=str(artifacts_dir / "studio-index.png"), full_page=True)

    def visit(url: str, shot: str, selector: str) -> None:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_selector(selector)
        page.screenshot(path=str(artifacts_dir / shot), full_page=True)

    visit(reverse("admin:studio_journeys"), "studio-journeys.png", "#studio-journeys")
    assert page.locator("#studio-journeys tbody tr").count() == 4

    visit(
        reverse("admin:studio_journey", args=["activation-welcome"]),
        "studio-journey-funnel.png",
        "svg.studio-funnel",
    )
    assert page.locator("svg.studio-funnel rect").count() >= 2
    assert "post-welcome" in page.locator("svg.studio-funnel").inner_html()

    # Disable from the page: a real POST with the CSRF token from the form.
    page.click("input[value='Disable this journey']")
    page.wait_for_selector("#journey-state")
    assert page.locator("#journey-state").inner_text() == "disabled"
    page.click("input[value='Re-enable this journey']")
    page.wait_for_selector("#journey-state")
    assert page.locator("#journey-state").inner_text() == "enabled"

    visit(reverse("admin:journeys_journeyrun_changelist"), "studio-runs.png", "#result_list")
    assert page.locator("#result_list tbody tr").count() == 4

    visit(
        reverse("admin:journeys_journeyrun_change", args=[data["waiting"].pk]),
        "studio-run-timeline.png",
        "#run-timeline",
    )
    assert "await-csm" in page.locator("#run-timeline").inner_text()

    visit(reverse("admin:contacts_contact_change", args=[data["ada"].pk]), "studio-contact.png", "#consent")
    assert "ada@example.com" in page.locator("#contact-email").inner_text()

    visit(reverse("admin:emails_emaillog_changelist"), "studio-email-log.png", "#result_list")
    visit(
        reverse("admin:emails_emaillog_change", args=[email.pk]), "studio-email-preview.png", "#email-preview"
    )
    frame = page.frame_locator("#email-preview")
    assert "Welcome" in frame.locator("body").inner_text()
