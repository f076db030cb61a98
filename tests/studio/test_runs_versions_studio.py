"""The Studio's runs list shows the journey version each run enrolled under, and filters by it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from journeys.models import JourneyRun
from journeys.registry import registry
from journeys.versions import journey_version

pytestmark = pytest.mark.django_db
RUNS = reverse("admin:journeys_journeyrun_changelist")


def test_runs_show_and_filter_by_the_version_they_started_on(admin_client, studio_data):
    current = journey_version(registry.get("activation-welcome"))
    sleeping = studio_data["sleeping"]
    assert JourneyRun.objects.get(pk=sleeping.pk).version == current
    older = JourneyRun.objects.create(
        journey_id="activation-welcome",
        contact=studio_data["ada"],
        status="completed",
        entered_at=sleeping.entered_at,
        version="0123456789ab",
    )

    response = admin_client.get(RUNS, {"journey_id": "activation-welcome"})
    html = response.content.decode()
    assert current in html and "0123456789ab" in html
    version_filter = next(
        f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "version"
    )
    assert {value for value, _ in version_filter.lookup_choices} == {current, "0123456789ab"}

    listed = admin_client.get(RUNS, {"journey_id": "activation-welcome", "version": "0123456789ab"})
    assert [run.pk for run in listed.context["cl"].result_list] == [older.pk]
