"""The webhook source registry: the presets, your own `define_webhook_source` calls (in modules
named by HOGSEND_WEBHOOK_SOURCE_MODULES) and generic sources declared in WEBHOOK_GENERIC_SOURCES."""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings

from integrations.sources.base import (
    HmacSignature,
    Mapper,
    Received,
    SharedSecret,
    SourceNotConfigured,
    StripeSignature,
    SvixSignature,
    VerificationFailed,
    Verifier,
    WebhookEvent,
    WebhookSkip,
    WebhookSource,
)
from integrations.sources.generic import json_mapping

__all__ = [
    "HmacSignature",
    "Received",
    "SharedSecret",
    "SourceNotConfigured",
    "StripeSignature",
    "SvixSignature",
    "VerificationFailed",
    "WebhookEvent",
    "WebhookSkip",
    "WebhookSource",
    "define_webhook_source",
    "json_mapping",
    "source_get",
    "sources_all",
]

PRESET_MODULES = (
    "integrations.sources.stripe",
    "integrations.sources.clerk",
    "integrations.sources.segment",
    "integrations.sources.posthog",
)

_sources: dict[str, WebhookSource] = {}
_loaded = False


def define_webhook_source(
    id: str,
    *,
    verify: Verifier,
    map: Mapper,
    name: str = "",
    delivery_id_path: str | None = None,
) -> WebhookSource:
    """Register a source served at `POST /v1/webhooks/<id>`; a later definition replaces an earlier one."""
    if not id or "/" in id or len(id) > 64:
        raise ValueError("a webhook source id is 1-64 characters without '/'")
    source = WebhookSource(id=id, verify=verify, map=map, name=name or id, delivery_id_path=delivery_id_path)
    _sources[id] = source
    return source


_VERIFIERS = {
    "hmac": HmacSignature,
    "svix": SvixSignature,
    "stripe": StripeSignature,
    "shared_secret": SharedSecret,
}


def _generic_from_settings(source_id: str, spec: dict[str, Any]) -> WebhookSource:
    """`{"billing": {"verify": "hmac", "header": "X-Signature", "prefix": "sha256=",
    "name": "type", "user_id": "data.user_id", "email": "...", "properties": "data",
    "occurred_at": "created_at", "delivery_id": "id"}}`."""
    verify_kind = spec.get("verify", "hmac")
    verify_options = {
        k: spec[k] for k in ("header", "prefix", "algorithm", "encoding", "scheme") if k in spec
    }
    mapping = {
        k: spec[k]
        for k in ("email", "properties", "contact_properties", "occurred_at", "event_id")
        if k in spec
    }
    return WebhookSource(
        id=source_id,
        verify=_VERIFIERS[verify_kind](**verify_options),
        map=json_mapping(name=spec["name"], user_id=spec["user_id"], **mapping),
        name=spec.get("title", source_id),
        delivery_id_path=spec.get("delivery_id"),
    )


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module_name in PRESET_MODULES:
        preset = importlib.import_module(module_name).SOURCE
        if preset["id"] not in _sources:
            define_webhook_source(**preset)
    for module_name in getattr(settings, "HOGSEND_WEBHOOK_SOURCE_MODULES", []):
        importlib.import_module(module_name)
    _loaded = True


def _from_settings() -> dict[str, WebhookSource]:
    # Read at each lookup (a handful of dict entries), so the setting is never stale.
    specs = getattr(settings, "WEBHOOK_GENERIC_SOURCES", None) or {}
    return {source_id: _generic_from_settings(source_id, spec) for source_id, spec in specs.items()}


def source_get(source_id: str) -> WebhookSource | None:
    _load()
    return _sources.get(source_id) or _from_settings().get(source_id)


def sources_all() -> list[WebhookSource]:
    _load()
    return sorted({**_from_settings(), **_sources}.values(), key=lambda s: s.id)
