"""Events from the browser: CORS for publishable keys (`pk_...`) and the visitor's address.

Only the events endpoints answer cross-origin requests, and only for an origin some live
publishable key allows. A preflight carries no Authorization header, so it is answered for the
origins of all publishable keys; the request that follows is checked against its own key's list
(`contacts.auth`), which sets `request.cors_origin` when it passes. A refused origin gets no
`Access-Control-Allow-Origin`, so the browser shows the page nothing, and a JSON 403 that says why.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from contacts.models import ApiKey

BROWSER_PATHS = frozenset({"/v1/events", "/v1/events/batch"})
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"


def origin_allowed_by_any_key(origin: str) -> bool:
    now = timezone.now()
    return (
        ApiKey.objects.filter(
            scopes__contains=[ApiKey.Scope.PUBLIC],
            allowed_origins__contains=[origin],
            revoked_at__isnull=True,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )


def client_address(request: HttpRequest) -> str:
    """The visitor's address: the socket's, or behind `TRUSTED_PROXY_COUNT` proxies the address
    the outermost trusted proxy saw (the only X-Forwarded-For entry a client cannot forge)."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = [
        part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()
    ]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


class BrowserCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/")
        origin = request.headers.get("Origin")
        if path not in BROWSER_PATHS or not origin:
            return self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self._preflight(origin)
        response = self.get_response(request)
        if getattr(request, "cors_origin", None) == origin:
            response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin" if "Vary" not in response else f"{response['Vary']}, Origin"
        return response

    def _preflight(self, origin: str) -> HttpResponse:
        if not origin_allowed_by_any_key(origin):
            response = JsonResponse(
                {
                    "detail": f"the origin {origin} is not allowed by any publishable key; add it to "
                    "the allowed origins of the key this page uses"
                },
                status=403,
            )
        else:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = "POST"
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = str(settings.BROWSER_CORS_MAX_AGE)
        response["Vary"] = "Origin"
        return response
