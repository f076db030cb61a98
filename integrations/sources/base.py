"""What every webhook source is: a verification scheme and a mapping from a delivery to events.

    define_webhook_source("billing", verify=HmacSignature(header="X-Signature"), map=my_map)

`verify` checks the raw body and headers and raises `VerificationFailed` (answered 401, nothing
stored). `map` turns the verified delivery into zero or more `WebhookEvent`s, each ingested through
`contacts.ingest.event_ingest`, the same pipeline as `POST /v1/events`. Secrets come from the
`WEBHOOK_SECRETS` setting (by source id) unless a verifier is given one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from django.conf import settings


class VerificationFailed(Exception):
    """The delivery is unsigned, wrongly signed or stale."""


class SourceNotConfigured(Exception):
    """The source has no secret yet; it refuses everything until it has one."""


@dataclass(frozen=True)
class Received:
    """One verified request: the raw body, its JSON, the headers (lower-cased) and its id."""

    source_id: str
    body: bytes
    headers: Mapping[str, str]
    payload: Any
    delivery_id: str = ""


@dataclass(frozen=True)
class WebhookEvent:
    """One event a delivery turns into; `idempotency_key` defaults to `<source>:<delivery id>:<n>`."""

    name: str
    user_id: str
    email: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    contact_properties: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    idempotency_key: str | None = None
    # The provider's id for the message this event came from, when one delivery carries several.
    message_id: str = ""


@dataclass(frozen=True)
class WebhookSkip:
    """A message of a delivery that becomes no event, and why (answered to the provider)."""

    message_id: str
    reason: str


class Verifier(Protocol):
    def __call__(self, *, source_id: str, body: bytes, headers: Mapping[str, str]) -> str:
        """Raise VerificationFailed, or return the provider's delivery id ("" if it sends none)."""


def _secret(explicit: str | None, source_id: str) -> str:
    secret = explicit if explicit is not None else (settings.WEBHOOK_SECRETS or {}).get(source_id, "")
    if not secret:
        raise SourceNotConfigured(
            f"set the {source_id!r} entry of WEBHOOK_SECRETS (or its environment variable) "
            "to the signing secret your provider shows"
        )
    return secret


def _now() -> float:
    return datetime.now(UTC).timestamp()


@dataclass(frozen=True)
class StripeSignature:
    """Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, within a tolerance."""

    secret: str | None = None
    tolerance_seconds: int = 300

    def __call__(self, *, source_id: str, body: bytes, headers: Mapping[str, str]) -> str:
        import stripe

        secret = _secret(self.secret, source_id)
        header = headers.get("stripe-signature")
        if not header:
            raise VerificationFailed("missing Stripe-Signature header")
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"), header, secret, tolerance=self.tolerance_seconds
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
            raise VerificationFailed(f"Stripe signature: {error}") from None
        return ""  # the event id in the body is Stripe's delivery id


@dataclass(frozen=True)
class SvixSignature:
    """Svix (Clerk, Resend and others): `svix-id`, `svix-timestamp`, `svix-signature: v1,<base64>`,
    HMAC-SHA256 of "id.timestamp.body" with the `whsec_` secret; also accepts the `webhook-*`
    headers of the Standard Webhooks specification. Five minutes' tolerance."""

    secret: str | None = None

    def __call__(self, *, source_id: str, body: bytes, headers: Mapping[str, str]) -> str:
        from svix.webhooks import Webhook, WebhookVerificationError

        secret = _secret(self.secret, source_id)
        try:
            Webhook(secret).verify(body, dict(headers))
        except WebhookVerificationError as error:
            raise VerificationFailed(f"Svix signature: {error}") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise VerificationFailed(f"Svix signature unreadable: {error}") from None
        return headers.get("svix-id") or headers.get("webhook-id") or ""


@dataclass(frozen=True)
class HmacSignature:
    """A hex (or base64) HMAC of the raw body in one header, optionally prefixed (`sha256=`)."""

    header: str = "x-signature"
    algorithm: str = "sha256"
    prefix: str = ""
    encoding: str = "hex"  # or "base64"
    secret: str | None = None

    def __call__(self, *, source_id: str, body: bytes, headers: Mapping[str, str]) -> str:
        secret = _secret(self.secret, source_id)
        given = headers.get(self.header.lower(), "")
        if not given:
            raise VerificationFailed(f"missing {self.header} header")
        if self.prefix and given.startswith(self.prefix):
            given = given[len(self.prefix) :]
        digest = hmac.new(secret.encode(), body, getattr(hashlib, self.algorithm)).digest()
        expected = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        if not hmac.compare_digest(expected.lower() if self.encoding == "hex" else expected, given.strip()):
            raise VerificationFailed(f"{self.header} does not match the body")
        return ""


@dataclass(frozen=True)
class SharedSecret:
    """For providers that can only send a fixed header: compares it in constant time.
    `Authorization: Bearer <secret>` by default."""

    header: str = "authorization"
    scheme: str = "Bearer"
    secret: str | None = None

    def __call__(self, *, source_id: str, body: bytes, headers: Mapping[str, str]) -> str:
        secret = _secret(self.secret, source_id)
        expected = f"{self.scheme} {secret}" if self.scheme else secret
        if not hmac.compare_digest(headers.get(self.header.lower(), "").encode(), expected.encode()):
            raise VerificationFailed(f"{self.header} does not carry the shared secret")
        return ""


Mapper = Callable[[Received], list[WebhookEvent | WebhookSkip]]


@dataclass(frozen=True)
class WebhookSource:
    id: str
    verify: Verifier
    map: Mapper
    name: str = ""
    # Where the provider's delivery id sits in the JSON when no header carries it (dotted path).
    delivery_id_path: str | None = None

    def delivery_id(self, *, header_id: str, payload: Any, body: bytes) -> str:
        if header_id:
            return header_id
        if self.delivery_id_path:
            found = dig(payload, self.delivery_id_path)
            if found not in (None, ""):
                return str(found)
        # No id from the provider: the body identifies the delivery (a byte-identical resend).
        return "sha256:" + hashlib.sha256(body).hexdigest()


def dig(payload: Any, path: str) -> Any:
    """`dig({"a": {"b": [1, 2]}}, "a.b.1") == 2`; None where the path leads nowhere."""
    value = payload
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def parse_time(value: Any) -> datetime | None:
    """Unix seconds or milliseconds, or ISO 8601; None if absent or unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):  # not a time, or one no calendar holds
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def json_body(body: bytes) -> Any:
    """The parsed body, or ValueError in words for the sender (never the parser's internals)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"the body is not UTF-8 (byte {error.start}); send JSON encoded as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the body is not JSON (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise ValueError("the body nests too deeply to read; send a flatter JSON document") from None
