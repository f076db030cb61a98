from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"
STRIPE_SECRET = "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CLERK_SECRET = "whsec_" + base64.b64encode(b"clerk-signing-secret-32-bytes!!!").decode()
SEGMENT_SECRET = "segment-shared-secret"
POSTHOG_SECRET = "posthog-shared-secret"


def payload(name: str) -> bytes:
    """A recorded provider payload, as the provider sends it (bytes, their own formatting)."""
    return (PAYLOADS / f"{name}.json").read_bytes()


def stripe_headers(body: bytes, *, secret: str = STRIPE_SECRET, at: int | None = None) -> dict[str, str]:
    """Signed by the stripe library itself: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">."""
    import stripe

    t = int(time.time()) if at is None else at
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), secret, t)}


def svix_headers(
    body: bytes, *, msg_id: str, secret: str = CLERK_SECRET, at: int | None = None
) -> dict[str, str]:
    """As Svix signs for Clerk: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> with the decoded key."""
    t = int(time.time()) if at is None else at
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(t),
        "svix-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def segment_headers(body: bytes, *, secret: str = SEGMENT_SECRET) -> dict[str, str]:
    """As Segment's Webhooks destination signs: X-Signature = hex HMAC-SHA1 of the body."""
    return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


@pytest.fixture(autouse=True)
def webhook_secrets(settings) -> dict[str, str]:
    settings.WEBHOOK_SECRETS = {
        "stripe": STRIPE_SECRET,
        "clerk": CLERK_SECRET,
        "segment": SEGMENT_SECRET,
        "posthog": POSTHOG_SECRET,
    }
    return settings.WEBHOOK_SECRETS


@pytest.fixture
def post_webhook(client):
    def post(source: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        response = client.post(
            f"/v1/webhooks/{source}", body, content_type="application/json", headers=headers or {}
        )
        response.body_json = json.loads(response.content or b"{}")
        return response

    return post


@pytest.fixture
def fake_receiver():
    """fake_receiver("webhook", secret) → a FakeReceiver listening on loopback until the test ends."""
    from tests.integrations.fakes import FakeReceiver, serve

    servers = []

    def start(protocol: str, secret: str = "") -> FakeReceiver:
        receiver = FakeReceiver(protocol=protocol, secret=secret)
        servers.append(serve(receiver))
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def instant_retries(settings):
    """Every retry is due at once: the schedule's length (attempts) is kept, its waits are not."""
    settings.INTEGRATIONS_RETRY_SCHEDULE = [0] * 7
    settings.INTEGRATIONS_DELIVERY_TIMEOUT_SECONDS = 5
