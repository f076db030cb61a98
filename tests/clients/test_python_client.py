"""The Python client against the running server: the real API, a real key, real failures injected
between them by a loopback proxy."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from hogsend_client import (
    AsyncHogsend,
    AuthenticationError,
    Hogsend,
    HogsendConnectionError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
)

from contacts.models import Contact, Event
from contacts.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_seeds_call_stores_the_event_for_the_user(live_server, api_key):
    hs = Hogsend(api_key=api_key, base_url=live_server.url)

    result = hs.events.send(
        name="csm.contacted", user_id="user_123", event_properties={"csm_name": "Sarah", "channel": "email"}
    )

    stored = Event.objects.get(pk=result.event_id)
    assert (stored.name, stored.contact.user_id) == ("csm.contacted", "user_123")
    assert stored.properties == {"csm_name": "Sarah", "channel": "email"}
    assert str(stored.contact_id) == result.contact_id and result.duplicate is False


def test_an_event_carries_email_contact_properties_and_its_timestamp(live_server, api_key):
    hs = Hogsend(api_key=api_key, base_url=live_server.url)
    when = datetime(2026, 6, 18, 15, 0, tzinfo=UTC)

    result = hs.events.send(
        name="meeting.booked",
        user_id="user_7",
        user_email="ada@example.com",
        contact_properties={"plan": "pro"},
        timestamp=when,
    )

    stored = Event.objects.select_related("contact").get(pk=result.event_id)
    assert stored.occurred_at == when
    assert (stored.contact.email, stored.contact.properties) == ("ada@example.com", {"plan": "pro"})


def test_a_batch_stores_the_good_items_and_names_the_bad_ones(live_server, api_key):
    hs = Hogsend(api_key=api_key, base_url=live_server.url)

    result = hs.events.send_batch(
        [
            {"name": "feature.used", "user_id": "user_1", "event_properties": {"feature": "reports"}},
            {"name": "feature.used", "user_id": "user_2", "timestamp": "yesterday"},
            {"name": "plan.upgraded", "user_id": "user_1"},
        ]
    )

    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 1)
    assert [item.status for item in result.results] == ["accepted", "rejected", "accepted"]
    assert result.results[1].errors[0]["field"] == "events[1].timestamp"
    assert Event.objects.filter(contact__user_id="user_1").count() == 2


def test_contacts_upsert_creates_then_merges_properties(live_server, api_key):
    hs = Hogsend(api_key=api_key, base_url=live_server.url)

    first = hs.contacts.upsert(user_id="user_9", email="grace@example.com", properties={"plan": "free"})
    second = hs.contacts.upsert(user_id="user_9", properties={"seats": 3})

    assert first.created is True and second.created is False
    assert second.properties == {"plan": "free", "seats": 3} and second.email == "grace@example.com"
    assert hs.contacts.get("user_9").id == first.id == str(Contact.objects.get(user_id="user_9").pk)


def test_double_opt_in_makes_a_new_contact_wait_for_its_confirmation(live_server, api_key):
    hs = Hogsend(api_key=api_key, base_url=live_server.url)

    hs.events.send(name="user.signed_up", user_id="user_1", user_email="ada@example.com", double_opt_in=True)
    hs.contacts.upsert(user_id="user_2", email="bob@example.com", double_opt_in=True)
    hs.contacts.upsert(user_id="user_3", email="eve@example.com", double_opt_in=False)

    waiting = {c.user_id: c.awaiting_confirmation for c in Contact.objects.all()}
    assert waiting == {"user_1": True, "user_2": True, "user_3": False}


def test_errors_are_typed_and_carry_the_servers_message(live_server, api_key):
    with pytest.raises(AuthenticationError) as unknown:
        Hogsend(api_key="hsk_nope", base_url=live_server.url).events.send(name="a", user_id="u")
    assert unknown.value.status_code == 401 and unknown.value.detail == "unknown API key"

    hs = Hogsend(api_key=api_key, base_url=live_server.url)
    with pytest.raises(ValidationError) as invalid:
        hs.events.send(name="a", user_id="u", user_email="not-an-email")
    assert invalid.value.errors[0]["field"] == "userEmail"
    assert "userEmail" in str(invalid.value)

    _, ingest_only = api_key_create(name="ingest only", scopes=["ingest"])
    with pytest.raises(PermissionDeniedError) as denied:
        Hogsend(api_key=ingest_only, base_url=live_server.url).contacts.get("user_1")
    assert denied.value.detail == "this API key lacks the 'read' scope"
    assert Event.objects.count() == 0


def test_a_lost_answer_is_retried_with_the_same_key_and_stored_once(proxy, api_key):
    proxy.queue("lost")
    hs = Hogsend(api_key=api_key, base_url=proxy.url)

    result = hs.events.send(name="invoice.paid", user_id="user_5")

    assert [entry["fault"] for entry in proxy.log] == ["lost", "forward"]
    keys = {entry["body"]["idempotencyKey"] for entry in proxy.log}
    assert len(keys) == 1
    assert result.duplicate is True
    assert Event.objects.filter(name="invoice.paid").count() == 1


def test_a_timed_out_attempt_is_retried_with_the_same_key_and_stored_once(proxy, api_key):
    proxy.queue("hang")
    hs = Hogsend(api_key=api_key, base_url=proxy.url, timeout=0.5, backoff=0.01)

    result = hs.events.send(name="invoice.paid", user_id="user_5")

    assert len({entry["body"]["idempotencyKey"] for entry in proxy.log}) == 1
    assert result.duplicate is True and Event.objects.count() == 1


def test_a_batch_retry_reuses_every_items_key(proxy, api_key):
    proxy.queue("lost")
    hs = Hogsend(api_key=api_key, base_url=proxy.url)

    result = hs.events.send_batch([{"name": "a.b", "user_id": "u1"}, {"name": "a.b", "user_id": "u2"}])

    first, second = (entry["body"]["events"] for entry in proxy.log)
    assert [e["idempotencyKey"] for e in first] == [e["idempotencyKey"] for e in second]
    assert result.duplicates == 2 and Event.objects.count() == 2


def test_retry_after_is_honoured_and_a_long_one_is_not_waited_out(proxy, api_key):
    proxy.queue("429:0", "503:0")
    hs = Hogsend(api_key=api_key, base_url=proxy.url)
    assert hs.events.send(name="a.b", user_id="u").duplicate is False
    assert [entry["fault"] for entry in proxy.log] == ["429:0", "503:0", "forward"]

    proxy.queue("429:3600")
    with pytest.raises(RateLimitError) as limited:
        hs.events.send(name="a.b", user_id="u")
    assert limited.value.retry_after == 3600 and len(proxy.log) == 4


def test_the_servers_own_rate_limit_is_a_typed_error_with_its_message(live_server):
    _, secret = api_key_create(name="slow", scopes=["ingest"], rate_limit=1)
    hs = Hogsend(api_key=secret, base_url=live_server.url, max_retries=0)

    # A limit of one request a second: two requests within one second are enough.
    with pytest.raises(RateLimitError) as limited:
        for index in range(50):
            hs.events.send(name="a.b", user_id=f"u{index}")
    assert limited.value.retry_after == 1
    assert "more than 1 requests in one second" in limited.value.detail

    patient = Hogsend(api_key=secret, base_url=live_server.url, max_retries=5)
    assert patient.events.send(name="a.b", user_id="after-the-limit").duplicate is False


def test_an_unreachable_server_is_a_connection_error_after_the_retries():
    with socket_that_refuses() as url:
        hs = Hogsend(api_key="hsk_x", base_url=url, max_retries=2, backoff=0.01)
        with pytest.raises(HogsendConnectionError, match="after 3 attempts"):
            hs.events.send(name="a.b", user_id="u")


def test_the_async_client_sends_batches_upserts_and_retries_alike(proxy, api_key):
    async def scenario():
        async with AsyncHogsend(api_key=api_key, base_url=proxy.url) as hs:
            proxy.queue("lost")
            one = await hs.events.send(name="csm.contacted", user_id="user_123")
            batch = await hs.events.send_batch([{"name": "a.b", "user_id": "user_123"}])
            contact = await hs.contacts.upsert(user_id="user_123", properties={"plan": "pro"})
            return one, batch, contact

    # A thread of its own: the session's Playwright browser keeps an event loop on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        one, batch, contact = pool.submit(asyncio.run, scenario()).result()

    assert one.duplicate is True and batch.accepted == 1
    assert contact.created is False and contact.properties == {"plan": "pro"}
    assert Event.objects.filter(contact__user_id="user_123").count() == 2


def test_a_naive_timestamp_is_refused_before_anything_is_sent():
    hs = Hogsend(api_key="hsk_x", base_url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        hs.events.send(name="a.b", user_id="u", timestamp=datetime(2026, 1, 1))


class socket_that_refuses:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        pass


def test_an_http_client_of_your_own_is_used_as_given(live_server, api_key):
    seen: list[int] = []
    http = httpx.Client(event_hooks={"response": [lambda r: seen.append(r.status_code)]})
    Hogsend(api_key=api_key, base_url=live_server.url, http_client=http).events.send(name="a.b", user_id="u")
    assert seen == [202]
