from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from contacts.models import AuditEntry
from journeys.models import JourneySetting
from journeys.registry import registry
from journeys.services import journey_is_enabled

pytestmark = pytest.mark.django_db


def test_a_non_staff_user_is_sent_to_the_login_page(client, django_user_model, studio_data):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=False)
    client.force_login(user)
    for url in (
        reverse("admin:studio_journeys"),
        reverse("admin:studio_journey", args=["activation-welcome"]),
        reverse("admin:journeys_journeyrun_changelist"),
        reverse("admin:journeys_journeyrun_change", args=[studio_data["sleeping"].pk]),
        reverse("admin:contacts_contact_change", args=[studio_data["ada"].pk]),
        reverse("admin:studio_templates"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_anonymous_cannot_toggle_a_journey(client):
    response = client.post(
        reverse("admin:studio_journey_enabled", args=["activation-welcome"]), {"enabled": "0"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not JourneySetting.objects.exists()


def test_the_admin_index_lists_the_studio_section(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert reverse("admin:studio_journeys") in response.content.decode()
    assert reverse("admin:studio_templates") in response.content.decode()


def test_every_registered_journey_is_listed_even_before_anyone_entered(
    admin_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):
        response = admin_client.get(reverse("admin:studio_journeys"))
    html = response.content.decode()
    for journey in registry.all():
        assert escape(journey.name) in html
        assert journey.trigger.event in html
    assert escape("plan eq 'enterprise'") in html  # concierge's trigger condition
    assert "meeting.booked" in html  # an exit rule


def test_the_overview_counts_runs_by_status(admin_client, studio_data):
    response = admin_client.get(reverse("admin:studio_journeys"))
    rows = {row["journey"].id: dict(row["counts"]) for row in response.context["rows"]}
    assert rows["activation-welcome"]["completed"] == 1
    assert rows["activation-welcome"]["waiting"] == 1
    assert rows["concierge-onboarding"]["waiting"] == 1
    assert rows["churn-prevention"]["failed"] == 1
    assert rows["conversion-abandoned-checkout"] == dict.fromkeys(rows["conversion-abandoned-checkout"], 0)


def test_a_journeys_page_draws_its_map_and_daily_chart(
    admin_client, studio_data, django_assert_max_num_queries
):
    with django_assert_max_num_queries(9):
        response = admin_client.get(reverse("admin:studio_journey", args=["activation-welcome"]))
    html = response.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="journey-map"' in html
    assert 'class="studio-daily"' in html
    nodes = {n.key: n for n in response.context["journey_map"].nodes}
    assert nodes["sleep:post-welcome"].parked == 1  # ada sleeps there now
    assert nodes["send:activation/nudge"].completed == 1  # bob finished after the nudge branch
    assert nodes["sleep:post-welcome"].rank < nodes["checkpoint:branch:nudge"].rank  # journey order
    assert 'data-node="sleep:post-welcome" data-parked="1" data-passed="2"' in html


def test_clicking_a_map_node_lists_the_runs_parked_there_within_ten_queries(
    admin_client, studio_data, django_assert_max_num_queries
):
    url = reverse("admin:studio_journey", args=["activation-welcome"])
    with django_assert_max_num_queries(10):
        response = admin_client.get(url, {"node": "sleep:post-welcome"})
    html = response.content.decode()
    ada_run = studio_data["sleeping"]
    assert reverse("admin:journeys_journeyrun_change", args=[ada_run.pk]) in html
    assert [run["pk"] for run in response.context["parked"]] == [ada_run.pk]
    unknown = admin_client.get(url, {"node": "wait:nowhere"})
    assert unknown.status_code == 200 and "has no node wait:nowhere" in unknown.content.decode()


def test_an_unknown_journey_is_a_404(admin_client):
    assert admin_client.get(reverse("admin:studio_journey", args=["nope"])).status_code == 404


def test_an_operator_disables_and_re_enables_a_journey_and_each_change_is_audited(admin_client, admin_user):
    journey = registry.get("activation-welcome")
    url = reverse("admin:studio_journey_enabled", args=[journey.id])

    response = admin_client.post(url, {"enabled": "0"})
    assert response.status_code == 302
    assert journey_is_enabled(journey=journey) is False
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target_type, entry.target_id) == (
        admin_user,
        "journey.disable",
        "journey",
        journey.id,
    )
    assert entry.detail == {"before": True, "after": False}
    page = admin_client.get(reverse("admin:studio_journey", args=[journey.id])).content.decode()
    assert 'id="journey-state">disabled' in page

    admin_client.post(url, {"enabled": "1"})
    assert journey_is_enabled(journey=journey) is True
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "journey.disable",
        "journey.enable",
    ]


def test_toggling_needs_a_post_with_a_csrf_token(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse("admin:studio_journey_enabled", args=["activation-welcome"])
    assert client.get(url).status_code == 405
    assert client.post(url, {"enabled": "0"}).status_code == 403
    assert not JourneySetting.objects.exists()


def test_a_disabled_journey_skips_new_triggers(admin_client, journey_harness):
    admin_client.post(reverse("admin:studio_journey_enabled", args=["activation-welcome"]), {"enabled": "0"})
    journey_harness.emit("user.created", user_id="late", email="late@example.com")
    assert journey_harness.run("activation-welcome", "late") is None
    assert journey_harness.skip_reasons("activation-welcome", "late") == ["journey_disabled"]
