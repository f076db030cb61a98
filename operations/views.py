"""`/metrics` for Prometheus: a bearer token (METRICS_TOKEN), or loopback only when none is set."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())
    # Behind a reverse proxy every request comes from loopback: a forwarded one is not local.
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(
            "metrics need 'Authorization: Bearer <METRICS_TOKEN>' (or, with no token set, a loopback client)\n",
            status=403,
            content_type="text/plain",
        )
    from operations.metrics import metrics_render

    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)
