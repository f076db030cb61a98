"""The Studio's broadcast pages: list, page, pause / resume / cancel, create with preview and
test send; every action through the broadcast services, refused without the permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from broadcasts import services
from broadcasts.models import Broadcast
from broadcasts.send import broadcast_drain
from broadcasts.templates import ANNOUNCEMENT
from contacts.models import AuditEntry, Suppression
from emails.models import EmailLog
from emails.registry import CONFIRMATION_TEMPLATE
from tests.broadcasts.conftest import ANNOUNCEMENT_PROPS, recipients_of
from tests.studio.conftest import messages_of

pytestmark = pytest.mark.django_db
PRO = [{"property": "plan", "operator": "eq", "value": "pro"}]


def make_broadcast(**fields) -> Broadcast:
    arguments = {"name": "Dark mode", "template": ANNOUNCEMENT, "props": ANNOUNCEMENT_PROPS,
                 "conditions": PRO, "rate": 0} | fields  # fmt: skip
    return services.broadcast_create(**arguments)


@pytest.fixture
def viewer(client, django_user_model):
    """Staff who may look at broadcasts but not change or create them."""
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_broadcast"))
    client.force_login(user)
    return client


def test_the_list_shows_each_broadcast_with_its_progress(admin_client, people, django_assert_max_num_queries):
    people(3, properties={"plan": "pro"})
    running = make_broadcast()
    broadcast_drain(broadcast_id=running.pk, seconds=30)
    make_broadcast(name="Later", send_at=running.created_at.replace(year=2099))

    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("admin:studio_broadcasts"))

    assert response.status_code == 200
    rows = {row["broadcast"].name: row for row in response.context["rows"]}
    assert (rows["Dark mode"]["done"], rows["Dark mode"]["total"], rows["Dark mode"]["percent"]) == (
        3,
        3,
        100.0,
    )
    assert (rows["Later"]["done"], rows["Later"]["total"]) == (0, 0)
    html = response.content.decode()
    assert reverse("admin:studio_broadcast", args=[running.pk]) in html
    assert "plan eq &#x27;pro&#x27;" in html and ANNOUNCEMENT in html
    assert reverse("admin:studio_broadcast_add") in html


def test_a_broadcast_page_shows_progress_report_and_the_actions_its_state_allows(
    admin_client, people, django_assert_max_num_queries
):
    gone = people(3, properties={"plan": "pro"})[2]
    Suppression.objects.create(email=gone.email, reason="bounce")  # skipped: suppressed
    broadcast = make_broadcast()
    broadcast_drain(broadcast_id=broadcast.pk, seconds=30)

    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("admin:studio_broadcast", args=[broadcast.pk]))

    assert response.status_code == 200
    progress = response.context["progress"]
    assert (progress.sent, sum(progress.skipped.values()), progress.remaining) == (2, 1, 0)
    assert response.context["report"] is not None
    html = response.content.decode()
    assert 'class="broadcast-report-chart"' in html and 'data-report="delivered"' in html
    assert response.context["actions"] == []  # completed: nothing to pause, resume or cancel


def test_pause_resume_and_cancel_change_the_state_and_are_audited(admin_client, people):
    people(1, properties={"plan": "pro"})
    broadcast = make_broadcast()
    assert broadcast.status == "running"
    page = admin_client.get(reverse("admin:studio_broadcast", args=[broadcast.pk]))
    assert page.context["actions"] == ["pause", "cancel"]

    for action, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        response = admin_client.post(
            reverse("admin:studio_broadcast_action", args=[broadcast.pk, action]), follow=True
        )
        assert response.status_code == 200
        broadcast.refresh_from_db()
        assert broadcast.status == status, action
        assert AuditEntry.objects.filter(action=f"broadcast.{action}", target_id=str(broadcast.pk)).exists()
    assert response.context["progress"].skipped == {"broadcast_cancelled": 1}


def test_a_forbidden_transition_is_a_message_not_an_error_page(admin_client, people):
    people(1, properties={"plan": "pro"})
    broadcast = make_broadcast()
    services.broadcast_cancel(broadcast_id=broadcast.pk)

    response = admin_client.post(
        reverse("admin:studio_broadcast_action", args=[broadcast.pk, "resume"]), follow=True
    )

    assert response.status_code == 200
    assert messages_of(response) == ["Not resumed: a cancelled broadcast cannot be resumed."]
    broadcast.refresh_from_db()
    assert broadcast.status == "cancelled"
    missing = reverse("admin:studio_broadcast_action", args=["00000000-0000-0000-0000-000000000000", "pause"])
    assert admin_client.post(missing).status_code == 404
    assert (
        admin_client.post(
            reverse("admin:studio_broadcast_action", args=[broadcast.pk, "explode"])
        ).status_code
        == 404
    )
    assert (
        admin_client.get(reverse("admin:studio_broadcast_action", args=[broadcast.pk, "pause"])).status_code
        == 405
    )


def test_a_user_without_the_permission_may_look_but_not_act_or_create(viewer, people):
    people(1, properties={"plan": "pro"})
    broadcast = make_broadcast()

    page = viewer.get(reverse("admin:studio_broadcast", args=[broadcast.pk]))
    assert page.status_code == 200 and page.context["actions"] == []
    assert "studio_broadcast_add" not in page.content.decode()
    for action in ("pause", "cancel"):
        response = viewer.post(reverse("admin:studio_broadcast_action", args=[broadcast.pk, action]))
        assert response.status_code == 403
    broadcast.refresh_from_db()
    assert broadcast.status == "running"
    assert viewer.get(reverse("admin:studio_broadcast_add")).status_code == 403
    assert viewer.post(reverse("admin:studio_broadcast_add"), {"name": "x"}).status_code == 403
    assert Broadcast.objects.count() == 1


def test_staff_without_view_permission_cannot_see_broadcasts(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(reverse("admin:studio_broadcasts")).status_code == 403


FORM = {"name": "Spring news", "template": ANNOUNCEMENT, "props": '{"headline": "Spring"}',
        "filter": '[{"property": "plan", "operator": "eq", "value": "pro"}]', "rate": "0"}  # fmt: skip


def test_preview_counts_the_audience_and_creates_nothing(admin_client, people):
    people(2, properties={"plan": "pro"})
    people(3, properties={"plan": "free"})

    response = admin_client.post(reverse("admin:studio_broadcast_add"), FORM | {"intent": "preview"})

    assert response.status_code == 200
    assert response.context["audience_size"] == 2
    assert '<strong id="audience-size">2</strong>' in response.content.decode()
    assert not Broadcast.objects.exists()


def test_create_starts_the_broadcast_and_goes_to_its_page(admin_client, people, admin_user):
    people(2, properties={"plan": "pro"})

    response = admin_client.post(reverse("admin:studio_broadcast_add"), FORM | {"intent": "create"})

    broadcast = Broadcast.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:studio_broadcast", args=[broadcast.pk])
    assert (broadcast.status, broadcast.recipients_total, broadcast.created_by) == ("running", 2, "admin")
    assert broadcast.filter == [{"property": "plan", "operator": "eq", "value": "pro"}]


def test_create_with_a_start_time_schedules_it(admin_client, people):
    people(1, properties={"plan": "pro"})
    form = FORM | {"intent": "create", "send_at": "2099-01-02T09:30"}

    response = admin_client.post(reverse("admin:studio_broadcast_add"), form, follow=True)

    broadcast = Broadcast.objects.get()
    assert (broadcast.status, broadcast.send_at.year, broadcast.recipients_total) == ("scheduled", 2099, 0)
    assert response.context["actions"] == ["pause", "cancel"]
    assert "Starts 2099-01-02 09:30" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"template": "nope/missing"}, "template", "nope/missing"),
        ({"template": CONFIRMATION_TEMPLATE}, "template", "never broadcast"),
        ({"segment": "nope", "filter": ""}, "segment", "unknown segment 'nope'"),
        ({"category": "transactional"}, "category", "marketing or lifecycle"),
        ({"rate": "-1"}, "rate", "sends per second"),
        ({"props": "{}"}, "props", "needs props: headline"),
        ({"props": "{not json"}, "props", "not JSON"),
        ({"filter": '[{"property": "plan", "operator": "near"}]'}, "filter", "near"),
        ({"template": "", "journey": ""}, "template", "give exactly one"),
        ({"name": ""}, "name", "give the broadcast a name"),
    ],
)
def test_a_bad_form_shows_the_error_beside_its_field(admin_client, people, change, field, says):
    response = admin_client.post(reverse("admin:studio_broadcast_add"), FORM | change | {"intent": "create"})

    assert response.status_code == 200
    assert says in " ".join(response.context["form"].errors[field])
    assert f'id="error-{field}"' in response.content.decode()
    assert not Broadcast.objects.exists()


def test_test_send_mails_one_address_with_the_forms_props(admin_client, smtp_server):
    response = admin_client.post(
        reverse("admin:studio_broadcast_add"), FORM | {"intent": "test", "test_to": "me@example.com"}
    )

    assert response.status_code == 200
    assert messages_of(response) == ["Test send to me@example.com: sent."]
    assert recipients_of(smtp_server) == ["me@example.com"]
    log = EmailLog.objects.get(to_email="me@example.com")
    assert log.subject.startswith("[test] ") and log.props == {"headline": "Spring"}
    assert AuditEntry.objects.filter(action="broadcast.test_send", target_id=ANNOUNCEMENT).exists()
    assert not Broadcast.objects.exists()


def test_test_send_needs_an_address(admin_client):
    response = admin_client.post(reverse("admin:studio_broadcast_add"), FORM | {"intent": "test"})
    assert "give the address" in response.context["form"].errors["test_to"][0]
