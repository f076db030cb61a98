"""Studio pages: the segments list, a segment's page with its size chart, a contact's segments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.models import SegmentSize
from audiences.segments import define_segment
from audiences.services import segment_refresh, segment_sizes_snapshot
from contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro(only_segments):
    only_segments(
        define_segment("pro", name="Pro customers", where=lambda b: b.prop("plan").eq("pro")),
        define_segment(
            "pro-subscribed", name="Pro, subscribed", where=lambda b: b.in_segment("pro") & b.subscribed()
        ),
    )
    ada = Contact.objects.create(user_id="ada", email="ada@example.com", properties={"plan": "pro"})
    segment_refresh("pro")
    segment_refresh("pro-subscribed")
    return ada


def test_the_list_shows_each_segment_with_its_size(admin_client, pro):
    page = admin_client.get(reverse("admin:studio_segments")).content.decode()
    assert "Pro customers" in page and "property plan eq &#x27;pro&#x27;" in page
    assert '<td class="segment-size">1</td>' in page


def test_a_segments_page_charts_its_size_over_time(admin_client, pro):
    now = timezone.now()
    for hours_ago, size in ((48, 3), (24, 5)):
        SegmentSize.objects.create(segment_id="pro", taken_at=now - timedelta(hours=hours_ago), size=size)
    segment_sizes_snapshot(now=now)
    page = admin_client.get(reverse("admin:studio_segment", args=["pro"])).content.decode()
    assert '<svg class="segment-chart"' in page and page.count("<circle") == 3
    assert "ada@example.com" in page and "Read by" in page


def test_an_unknown_segments_page_is_a_404(admin_client, pro):
    assert admin_client.get(reverse("admin:studio_segment", args=["nope"])).status_code == 404


def test_a_contacts_page_lists_its_segments(admin_client, pro):
    page = admin_client.get(reverse("admin:contacts_contact_change", args=[pro.pk])).content.decode()
    assert 'id="contact-segments"' in page and "Pro customers" in page and "Pro, subscribed" in page


def test_the_studio_export_streams_members(admin_client, pro):
    response = admin_client.get(reverse("admin:studio_segment_export", args=["pro"]) + "?format=jsonl")
    assert b"ada@example.com" in b"".join(response.streaming_content)
