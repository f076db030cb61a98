"""The Studio's Operations page: charts drawn from the database, limits marked, alerts listed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from operations.models import Alert
from tests.operations.conftest import contact, email_log, journey_run

pytestmark = pytest.mark.django_db
PAGE = "/admin/studio/operations/"


def titles(html: str, chart_id: str) -> list[str]:
    section = html.split(f'id="{chart_id}"', 1)[1].split("</svg>", 1)[0]
    return re.findall(r"<title>([^<]+)</title>", section)


def test_sends_per_day_are_stacked_by_status(admin_client):
    yesterday = timezone.now() - timedelta(days=1)
    for _ in range(3):
        email_log(status="delivered", created_at=yesterday)
    email_log(status="bounced", created_at=yesterday, bounced_at=yesterday)

    html = admin_client.get(PAGE).content.decode()

    day = f"{yesterday:%Y-%m-%d}"
    assert f"{day}: 3 delivered" in titles(html, "ops-sends")
    assert f"{day}: 1 bounced" in titles(html, "ops-sends")


def test_a_day_over_the_complaint_limit_is_marked_against_the_0_3_percent_line(admin_client, settings):
    settings.ALERT_COMPLAINT_RATE = 0.003
    today = timezone.now()
    for _ in range(199):
        email_log(status="delivered", created_at=today)
    email_log(status="complained", created_at=today, complained_at=today)

    html = admin_client.get(PAGE).content.decode()

    rate_titles = titles(html, "ops-rates")
    assert "complaint_rate threshold 0.3%" in rate_titles
    assert f"{today:%Y-%m-%d}: complaint rate 0.50% of 200 sent" in rate_titles
    summary = html.split('id="ops-rate-summary"', 1)[1].split("</p>", 1)[0]
    assert 'class="ops-over">0.50%' in summary


def test_journey_entries_and_completions_per_day(admin_client):
    for _ in range(2):
        journey_run(contact(), status="completed")
    journey_run(contact(), status="waiting")

    html = admin_client.get(PAGE).content.decode()

    today = f"{timezone.localdate():%Y-%m-%d}"
    flow = titles(html, "ops-flow")
    assert f"{today}: 2 completed" in flow


def test_firing_alerts_are_listed_and_the_page_is_on_the_studio_index(admin_client):
    Alert.objects.create(
        rule="outbox_lag", summary="12 events pending", value=900, threshold=300, fired_at=timezone.now()
    )

    html = admin_client.get(PAGE).content.decode()
    index = admin_client.get("/admin/").content.decode()

    assert "outbox_lag: 12 events pending" in html
    assert PAGE in index


def test_alert_history_is_read_only(admin_client):
    alert = Alert.objects.create(
        rule="outbox_lag", summary="x", value=1, threshold=0, fired_at=timezone.now()
    )

    assert admin_client.get("/admin/operations/alert/").status_code == 200
    assert admin_client.get("/admin/operations/alert/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/operations/alert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_journey_flow_can_be_narrowed_to_one_journey(admin_client):
    for _ in range(2):
        journey_run(contact(), journey_id="activation-welcome", status="completed")
    journey_run(contact(), journey_id="churn-prevention", status="completed")
    today = f"{timezone.localdate():%Y-%m-%d}"

    everything = titles(admin_client.get(PAGE).content.decode(), "ops-flow")
    one = titles(admin_client.get(PAGE, {"journey": "churn-prevention"}).content.decode(), "ops-flow")

    assert f"{today}: 3 completed" in everything
    assert f"{today}: 1 completed" in one
