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
    """`Authorization: Bearer hsk_...`; 401 says what is wrong with the key, 403 names the scope."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

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
        if not key.allows(self.scope):
            raise HttpError(403, f"this API key lacks the '{self.scope}' scope")
        # Cheap enough, and it tells operators which keys are still in use.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key


ingest_auth = ApiKeyAuth(ApiKey.Scope.INGEST)
read_auth = ApiKeyAuth(ApiKey.Scope.READ)
admin_auth = ApiKeyAuth(ApiKey.Scope.ADMIN)
