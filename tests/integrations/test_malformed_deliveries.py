"""No webhook source answers a signed but malformed delivery with a 500 or with internal error
text: every preset, a settings-declared source and a code-defined one get arrays, scalars, nested
garbage, NUL characters and bodies no parser reads, and each answer says what is wrong in words."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from contacts.models import Event
from integrations.sources import HmacSignature, define_webhook_source, json_mapping, sources_all
from tests.integrations.conftest import POSTHOG_SECRET, segment_headers, stripe_headers, svix_headers

pytestmark = pytest.mark.django_db

GENERIC_SECRET = "generic-shared-secret"
INTERNALS = (
    "Traceback",
    "object has no attribute",
    "NoneType",
    "Error(",
    "Error:",
    "KeyError",
    "TypeError",
    "not subscriptable",
    "NUL (0x00)",
    "psycopg",
    "char 0",
    "Expecting value",
)
NUL = "a\u0000b"
BODIES = [
    b"[]",
    b"[1, 2, 3]",
    b'[{"type": "track"}, null, [[]]]',
    b'"just a string"',
    b"42",
    b"null",
    b"true",
    b"{}",
    b'{"type": {"nested": [1, {"x": null}]}, "data": [1, 2], "event": 7, "person": "x"}',
    b'{"type": "invoice.payment_failed", "data": {"object": []}}',
    b'{"type": "invoice.payment_failed", "data": {"object": {"object": "invoice", "customer": {"id": []}}}}',
    b'{"type": "user.created", "data": {"id": {"a": 1}, "email_addresses": "x"}}',
    b'{"type": "track", "event": ["x"], "userId": {"a": 1}, "messageId": []}',
    b'{"event": {"event": [], "distinct_id": {}}, "person": []}',
    b'{"created": 1e300, "timestamp": -1e300, "type": "customer.subscription.deleted",'
    b' "data": {"object": {"object": "subscription", "metadata": {"user_id": "u1"}, "items": 5}}}',
    json.dumps({"type": "track", "event": NUL, "userId": NUL, "messageId": "m1"}).encode(),
    json.dumps({"type": "identify", "userId": "u1", "messageId": "m2", "traits": {NUL: NUL}}).encode(),
    json.dumps({"event": {"event": "x", "distinct_id": NUL, "uuid": "u"}, "person": {}}).encode(),
    json.dumps(
        {"type": "invoice.paid", "data": {"object": {"object": "invoice", "metadata": {"user_id": NUL}}}}
    ).encode(),
    json.dumps({"type": "user.created", "data": {"id": "user_1", "first_name": NUL}}).encode(),
    json.dumps({"type": "ping", "user": {"id": NUL}, "props": {"deep": [{NUL: 1}]}}).encode(),
    b'{"type": "track", "event": "x", "userId": "u1", "properties": {"n": NaN}}',
    b"[" * 100_000 + b"]" * 100_000,
    b"\xff\xfe not utf-8",
    b"{not json",
    b"",
]


@pytest.fixture
def every_source(settings, webhook_secrets):
    settings.WEBHOOK_GENERIC_SOURCES = {
        "billing": {
            "verify": "hmac",
            "header": "X-Signature",
            "name": "type",
            "user_id": "user.id",
            "properties": "props",
            "occurred_at": "at",
            "delivery_id": "id",
        }
    }
    settings.WEBHOOK_SECRETS = {**webhook_secrets, "billing": GENERIC_SECRET, "coded": GENERIC_SECRET}
    define_webhook_source(
        "coded",
        verify=HmacSignature(header="X-Signature"),
        map=json_mapping(name="type", user_id="user.id", properties="props"),
    )
    return [s.id for s in sources_all()]


def signed(source_id: str, body: bytes) -> dict[str, str]:
    if source_id == "stripe":
        return stripe_headers(body) if _utf8(body) else {"Stripe-Signature": "t=1,v1=00"}
    if source_id == "clerk":
        return svix_headers(body, msg_id=f"msg_{hashlib.sha256(body).hexdigest()[:16]}")
    if source_id == "segment":
        return segment_headers(body)
    if source_id == "posthog":
        return {"Authorization": f"Bearer {POSTHOG_SECRET}"}
    return {"X-Signature": hmac.new(GENERIC_SECRET.encode(), body, hashlib.sha256).hexdigest()}


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_every_source_answers_every_malformed_body_in_words(every_source, post_webhook):
    assert {"stripe", "clerk", "segment", "posthog", "billing", "coded"} <= set(every_source)
    for source_id in every_source:
        for body in BODIES:
            response = post_webhook(source_id, body, signed(source_id, body))
            what = f"{source_id} answered {body[:60]!r} with {response.status_code}"
            assert response.status_code in (200, 400, 401, 422), what
            assert response["Content-Type"].startswith("application/json"), what
            text = json.dumps(response.body_json)
            assert not [word for word in INTERNALS if word in text], f"{what}: {text[:300]}"
            assert response.body_json.get("detail"), what
    # What was ingested is what a sender meant, never a mangled NUL.
    assert not [e for e in Event.objects.select_related("contact") if "\ufffd" in e.name + e.contact.user_id]
