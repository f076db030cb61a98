"""A real Chromium walks the segments pages on the production-shaped web process (gunicorn, DEBUG
off, WhiteNoise), with the shipped example segments defined."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.models import SegmentSize
from audiences.segments import load_segment_modules, registry
from audiences.services import segment_refresh
from contacts.ingest import event_ingest
from contacts.models import Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def segments_server(django_db_setup, collected_static, tmp_path_factory):
    from tests.support import gunicorn_server

    with gunicorn_server(
        tmp_path_factory.mktemp("web-segments"),
        static_root=collected_static,
        HOGSEND_SEGMENT_MODULES="audiences.shipped",
    ) as server:
        yield server


@pytest.fixture
def studio(browser, segments_server, artifacts_dir, django_user_model):
    from tests.browser import StudioBrowser

    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    studio = StudioBrowser(browser, segments_server, artifacts_dir)
    yield studio
    studio.close()


@pytest.fixture
def shipped(only_segments):
    only_segments()
    load_segment_modules(["audiences.shipped"])
    for i in range(6):
        event_ingest(
            name="feature.used", user_id=f"user-{i}", email=f"user{i}@example.com",
            contact_properties={"plan": "pro" if i % 2 == 0 else "free"},
        )  # fmt: skip
    for segment in registry.in_dependency_order():
        segment_refresh(segment.id)
    for _ in range(2):
        event_ingest(name="feature.used", user_id="user-0")
    now = timezone.now()
    for hours_ago, size in ((72, 1), (48, 2), (30, 2), (24, 4), (6, 5)):
        SegmentSize.objects.update_or_create(
            segment_id="pro-plan", taken_at=(now - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0),
            defaults={"size": size},
        )  # fmt: skip
    segment_refresh("pro-plan")


def test_an_operator_reads_segments_their_size_over_time_and_a_contacts_segments(studio, shipped):
    studio.login()
    page = studio.page
    assert page.locator("a", has_text="Segments").first.is_visible()

    studio.visit(reverse("admin:studio_segments"), shot="studio-segments.png", selector="#studio-segments")
    rows = page.locator("#studio-segments tbody tr")
    assert rows.count() == len(registry.all())
    pro_row = rows.filter(has_text="On the Pro plan")
    assert pro_row.locator(".segment-size").inner_text() == "3"

    pro_row.locator("a").first.click()
    page.wait_for_selector("svg.segment-chart")
    studio.check(shot="studio-segment-pro-plan.png")
    assert page.locator("#segment-size").inner_text() == "3"
    assert page.locator("svg.segment-chart circle").count() == 6  # five snapshots and this hour's
    assert page.locator("#segment-members tbody tr").count() == 3
    assert "pro-power-users" in page.locator("#content-main").inner_text()  # read by

    studio.visit(reverse("admin:studio_segment", args=["pro-power-users"]), shot="studio-segment-pro-power.png",
                 selector="#segment-members")  # fmt: skip
    assert page.locator("#segment-members tbody tr").count() == 1  # user-0: pro, 3 uses this week

    ada = Contact.objects.get(user_id="user-0")
    studio.visit(
        reverse("admin:contacts_contact_change", args=[ada.pk]), shot="studio-contact-segments.png",
        selector="#contact-segments",
    )  # fmt: skip
    names = page.locator("#contact-segments tbody").inner_text()
    assert "On the Pro plan" in names and "Pro customers who are power users" in names
