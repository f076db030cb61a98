from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import AuditEntry
from integrations.models import Delivery, Destination

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A Standard Webhooks receiver on loopback that verifies every signature it gets."""
    from tests.integrations.fakes import FakeReceiver, serve

    fake = FakeReceiver(protocol="webhook")
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook(receiver) -> Destination:
    destination = Destination.objects.create(name="crm", kind="webhook", url=f"{receiver.url}/hooks")
    receiver.secret = destination.secret
    return destination


def delivery(destination: Destination, status: str, *, minutes_ago: int = 0) -> Delivery:
    when = timezone.now() - timedelta(minutes=minutes_ago)
    return Delivery.objects.create(
        destination=destination,
        event_id=f"00000000-0000-0000-0000-0000000000{minutes_ago:02d}",
        event_type="email.bounced",
        payload={"type": "email.bounced"},
        status=status,
        attempts=8 if status == "dead" else 1,
        next_attempt_at=when,
        last_error="503 Service Unavailable" if status == "dead" else "",
        dead_at=when if status == "dead" else None,
    )


def test_destinations_are_listed_with_what_waits_and_what_died_but_no_secret(admin, hook):
    delivery(hook, "dead", minutes_ago=1)
    delivery(hook, "pending")
    [listed] = admin.get("/v1/admin/destinations").json()
    assert (listed["name"], listed["kind"], listed["pending"], listed["deadLetters"]) == (
        "crm",
        "webhook",
        1,
        1,
    )
    assert "secret" not in listed and "url" not in listed


def test_dead_letters_page_newest_death_first_with_the_last_error(admin, hook):
    older, newer = delivery(hook, "dead", minutes_ago=5), delivery(hook, "dead", minutes_ago=1)
    delivery(hook, "pending")
    first = admin.get(f"/v1/admin/destinations/{hook.pk}/dead-letters?limit=1").json()
    assert [d["id"] for d in first["items"]] == [str(newer.pk)]
    assert first["items"][0]["lastError"] == "503 Service Unavailable"
    second = admin.get(
        f"/v1/admin/destinations/{hook.pk}/dead-letters?limit=1&cursor={first['nextCursor']}"
    ).json()
    assert [d["id"] for d in second["items"]] == [str(older.pk)] and second["nextCursor"] is None
    assert admin.get("/v1/admin/destinations/999/dead-letters").status_code == 404


def test_a_dead_letter_is_replayed_with_a_fresh_attempt_count_and_audited(admin, hook):
    dead = delivery(hook, "dead", minutes_ago=1)
    response = admin.post(f"/v1/admin/deliveries/{dead.pk}/replay")
    assert (response.status_code, response.json()) == (202, {"replayed": 1})
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.dead_at) == ("pending", 0, None)
    assert AuditEntry.objects.get(action="delivery.replay").actor_label.startswith("api key ops")
    assert admin.post(f"/v1/admin/deliveries/{dead.pk}/replay").status_code == 409


def test_every_dead_letter_of_a_destination_is_replayed_at_once(admin, hook):
    for minutes in (1, 2, 3):
        delivery(hook, "dead", minutes_ago=minutes)
    assert admin.post(f"/v1/admin/destinations/{hook.pk}/dead-letters/replay").json() == {"replayed": 3}
    assert not Delivery.objects.filter(status="dead").exists()


def test_a_test_send_reaches_the_receiver_signed_and_says_what_it_answered(admin, hook, receiver):
    response = admin.post(f"/v1/admin/destinations/{hook.pk}/test")
    assert response.json() == {"ok": True, "statusCode": 200, "error": ""}
    assert [r.json["type"] for r in receiver.received] == ["destination.test"] and receiver.refused == []

    receiver.fail_next = 1
    failed = admin.post(f"/v1/admin/destinations/{hook.pk}/test").json()
    assert (failed["ok"], failed["statusCode"]) == (False, 503)
