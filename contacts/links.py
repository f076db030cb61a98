"""Absolute links to a token route (`<str:token>`), the route reversed once per process.

Every email carries four or more: the preference center, the one-click unsubscribe, the open pixel
and a redirect per tracked link. `reverse` walks the URL resolver for each (a tenth of a journey
send's CPU in the worker); the path around the token is the same every time, so it is reversed once
per route, URL configuration and script prefix with a placeholder, and the token put in its place.
A token with a character `reverse` would quote is reversed as before.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

_PLACEHOLDER = "hogsendtoken0"
# What `reverse` leaves as it is in a path (unreserved characters, and ':' which it keeps too).
_KEPT = re.compile(r"[A-Za-z0-9:_.~-]+\Z")
_routes: dict[tuple[str, str, str, str | None], tuple[str, str]] = {}


def token_url(name: str, token: str) -> str:
    """`settings.PUBLIC_BASE_URL + reverse(name, args=[token])`."""
    if not _KEPT.match(token):
        return settings.PUBLIC_BASE_URL + reverse(name, args=[token])
    key = (name, settings.ROOT_URLCONF, get_script_prefix(), get_urlconf())
    route = _routes.get(key)
    if route is None:
        prefix, found, suffix = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
        if not found:  # never for a `<str:token>` route: reversed as before
            return settings.PUBLIC_BASE_URL + reverse(name, args=[token])
        route = _routes[key] = (prefix, suffix)
    return f"{settings.PUBLIC_BASE_URL}{route[0]}{token}{route[1]}"
