"""Bearer API-key authentication with scopes, for the ninja routers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import HttpBearer

from contacts.models import ApiKey
from contacts.selectors import api_key_lookup
from contacts.services import api_key_hash


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer hsk_...`; 401 says what is wrong with the key, 403 names the scope.

    With `publishable=True` (the events endpoints) a `pk_...` key is accepted too, from a request
    whose `Origin` the key allows; `request.cors_origin` then tells the CORS middleware to answer.
    """

    def __init__(self, scope: str, *, publishable: bool = False) -> None:
        super().__init__()
        self.scope = scope
        self.publishable = publishable

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        if not header:
            raise HttpError(401, "missing Authorization header; send 'Authorization: Bearer <api key>'")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "malformed Authorization header; expected 'Bearer <api key>'")
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_lookup(api_key_hash(token))
        if key is None:
            raise HttpError(401, "unknown API key")
        now = timezone.now()
        if key.revoked_at is not None:
            raise HttpError(401, "this API key was revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise HttpError(401, "this API key has expired")
        if key.is_publishable:
            self._check_origin(request, key)
        elif not key.allows(self.scope):
            raise HttpError(403, f"this API key lacks the '{self.scope}' scope")
        # Cheap enough, and it tells operators which keys are still in use.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key

    def _check_origin(self, request: HttpRequest, key: ApiKey) -> None:
        if not self.publishable:
            raise HttpError(
                403,
                "a publishable key (pk_...) may only send events (POST /v1/events, /v1/events/batch) "
                "from a browser; call this endpoint from your server with a secret key (hsk_...)",
            )
        origin = request.headers.get("Origin")
        if not origin:
            raise HttpError(
                403,
                "a publishable key (pk_...) is accepted only from a browser page, and this request has "
                "no Origin header; from a server, send events with a secret key (hsk_...)",
            )
        if origin not in key.allowed_origins:
            raise HttpError(
                403,
                f"the origin {origin} is not allowed for this publishable key (it allows "
                f"{', '.join(key.allowed_origins)}); add the origin to the key's allowed origins",
            )
        request.cors_origin = origin  # type: ignore[attr-defined]


ingest_auth = ApiKeyAuth(ApiKey.Scope.INGEST)
# The events endpoints: secret keys with the ingest scope, and publishable keys from their origins.
events_auth = ApiKeyAuth(ApiKey.Scope.INGEST, publishable=True)
read_auth = ApiKeyAuth(ApiKey.Scope.READ)
admin_auth = ApiKeyAuth(ApiKey.Scope.ADMIN)
