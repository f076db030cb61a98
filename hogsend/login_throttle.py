"""Studio login throttling: django-axes counts failed logins per account and per client address."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class ThrottledLoginBackend(AxesStandaloneBackend):
    """axes' backend, except that code calling `authenticate()` without a request (a management
    command, the test client's `login()`) is passed on to the next backend instead of crashing:
    only logins over HTTP have an address to throttle."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)
