"""A real headless Chromium draws the Operations page's charts (inline SVG, no script), served as
`bin/run` serves the Studio."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.operations.conftest import contact, email_log, journey_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_operations_page_draws_three_charts_and_marks_a_bad_day(studio_browser, django_user_model):
    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    rng = random.Random(12)
    now = timezone.now()
    for days_ago in range(14):
        at = now - timedelta(days=days_ago)
        for _ in range(rng.randint(10, 30)):
            email_log(
                status=rng.choice(["delivered", "delivered", "opened", "clicked", "sent"]), created_at=at
            )
        email_log(status="bounced", created_at=at, bounced_at=at)
    bad_day = now - timedelta(days=3)
    for _ in range(3):
        email_log(status="complained", created_at=bad_day, complained_at=bad_day)
    for _ in range(6):
        journey_run(contact(), status="completed", ended_ago=timedelta(days=rng.randint(0, 10)))

    studio_browser.login()
    page = studio_browser.visit("/admin/studio/operations/?days=30", shot="studio-operations.png")

    assert page.locator("svg.ops-chart").count() == 3
    for chart in page.locator("svg.ops-chart").all():
        box = chart.bounding_box()
        assert box and box["width"] > 500 and box["height"] > 100
    # The complaint spike is a red dot over the dashed 0.3% line.
    assert page.locator('#ops-rates circle[fill="#c62828"]').count() >= 1
