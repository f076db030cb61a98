"""Django's browser middleware, left out of the events endpoints.

`POST /v1/events` and `/v1/events/batch` are called by servers with a bearer key (or by a page with
a publishable one) and answer JSON: they read no session, no user, no CSRF cookie and no flash
message. Each of those middleware costs a few percent of a single event's request, and ingest is
the product's hottest path, so on these two paths it passes the request straight on. Every other
path, the Studio and the admin among them, runs it as Django ships it. The classes subclass
Django's, so the system checks that look for them still find them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware

from contacts.browser import BROWSER_PATHS as EVENT_PATHS


def is_event_route(request: HttpRequest) -> bool:
    return request.path.rstrip("/") in EVENT_PATHS


class _NotOnEventRoutes:
    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if is_event_route(request):
            return self.get_response(request)  # a coroutine under ASGI, awaited by the caller
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_NotOnEventRoutes, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(_NotOnEventRoutes, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_NotOnEventRoutes, DjangoMessageMiddleware):
    pass


class CsrfViewMiddleware(_NotOnEventRoutes, DjangoCsrfViewMiddleware):
    """The events views are CSRF-exempt already (ninja's, bearer keys); the check is skipped too."""

    def process_view(self, request: HttpRequest, callback, callback_args, callback_kwargs):
        if is_event_route(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)
