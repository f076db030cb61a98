"""Tracking endpoints: the open pixel and click redirects. They answer fast and never error on a person."""

from __future__ import annotations

import base64

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from emails.tracking import TrackingLinkError, email_click_record, email_open_record

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
@require_http_methods(["GET", "HEAD"])
def email_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        email_open_record(
            token=token, method=request.method or "GET", user_agent=request.headers.get("User-Agent", "")
        )
    except TrackingLinkError:
        pass  # still a pixel: a broken image in someone's inbox helps no one
    return HttpResponse(_PIXEL, content_type="image/gif")


@never_cache
@require_http_methods(["GET", "HEAD"])
def email_click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        url = email_click_record(
            token=token, method=request.method or "GET", user_agent=request.headers.get("User-Agent", "")
        )
    except TrackingLinkError:
        return HttpResponseNotFound("This link is not valid.", content_type="text/plain")
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"
    return response
