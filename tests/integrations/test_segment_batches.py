"""Segment's Webhooks (Actions) destination with batching on posts a JSON array of messages,
signed like a single one: each message is answered on its own and deduplicated by its messageId."""

from __future__ import annotations

import json

import pytest

from contacts.models import Contact, Event
from integrations.models import WebhookDelivery
from tests.integrations.conftest import segment_headers

pytestmark = pytest.mark.django_db


def track(message_id: str, user_id: str | None, event: str = "Order Completed", **properties) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": user_id,
        "messageId": message_id,
        "timestamp": "2026-11-20T12:00:00.000Z",
        "properties": properties,
        "context": {"traits": {"email": f"{user_id}@example.com"}},
    }


def post(post_webhook, messages, *, signed: bool = True):
    body = json.dumps(messages).encode()
    return post_webhook("segment", body, segment_headers(body) if signed else {})


def by_id(response) -> dict[str, dict]:
    return {r["messageId"]: r for r in response.body_json["results"]}


def test_a_signed_batch_ingests_each_message_and_answers_each(post_webhook):
    identify = {
        "type": "identify",
        "userId": "user-8",
        "messageId": "m-2",
        "traits": {"email": "b@example.com"},
    }
    response = post(post_webhook, [track("m-1", "user-7", total=27.5), identify, track("m-3", None), "noise"])

    assert response.status_code == 200, response.body_json
    answers = by_id(response)
    assert [answers[m]["status"] for m in ("m-1", "m-2", "m-3", "#3")] == [
        "accepted",
        "accepted",
        "ignored",
        "ignored",
    ]
    assert "anonymous" in answers["m-3"]["detail"] and "JSON object" in answers["#3"]["detail"]
    events = {e.name: e for e in Event.objects.select_related("contact")}
    assert set(events) == {"Order Completed", "user.identified"}
    assert events["Order Completed"].properties == {"total": 27.5}
    assert str(events["Order Completed"].id) == answers["m-1"]["eventId"]
    assert Contact.objects.get(user_id="user-8").email == "b@example.com"


def test_a_message_in_a_later_batch_again_is_a_duplicate_and_the_new_one_is_kept(post_webhook):
    post(post_webhook, [track("m-1", "user-7"), track("m-2", "user-7")])
    response = post(post_webhook, [track("m-2", "user-7"), track("m-4", "user-7")])

    assert response.status_code == 200
    assert {m: a["status"] for m, a in by_id(response).items()} == {"m-2": "duplicate", "m-4": "accepted"}
    assert Event.objects.count() == 3


def test_the_same_batch_resent_byte_for_byte_changes_nothing(post_webhook):
    batch = [track("m-1", "user-7"), track("m-2", "user-7")]
    post(post_webhook, batch)
    again = post(post_webhook, batch)

    assert (again.status_code, again.body_json["duplicate"]) == (200, True)
    assert Event.objects.count() == 2


def test_an_unsigned_batch_is_refused_and_nothing_is_stored(post_webhook):
    response = post(post_webhook, [track("m-1", "user-7")], signed=False)

    assert response.status_code == 401
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_message_the_pipeline_cannot_store_is_refused_alone(post_webhook):
    response = post(post_webhook, [track("m-1", "user-7", note="a\x00b"), track("m-2", "user-7")])

    assert response.status_code == 200
    answers = by_id(response)
    assert answers["m-1"]["status"] == "refused"
    assert answers["m-1"]["detail"] == "properties.note: contains a NUL character (\\u0000); remove it"
    assert answers["m-2"]["status"] == "accepted"
    assert Event.objects.count() == 1


def test_a_batch_of_nothing_but_unstorable_messages_is_a_failed_delivery_to_retry(post_webhook):
    response = post(post_webhook, [track("m-1", "user\x00-7")])

    assert response.status_code == 422
    assert "userId contains a NUL character" in response.body_json["detail"]
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.FAILED
