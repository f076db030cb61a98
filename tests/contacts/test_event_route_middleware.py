"""The events endpoints pass Django's session, CSRF, user and message middleware by
(hogsend/middleware.py): they are bearer-key JSON endpoints, and that work was a few percent of
every single event. Every other path still runs it."""

from __future__ import annotations

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware

pytestmark = pytest.mark.django_db


@pytest.fixture
def ran(monkeypatch) -> list[str]:
    """The names of the browser middleware that looked at a request, in order."""
    seen: list[str] = []
    for middleware in (SessionMiddleware, CsrfViewMiddleware, AuthenticationMiddleware, MessageMiddleware):
        original = middleware.process_request

        def recording(self, request, _original=original, _name=middleware.__name__):
            seen.append(_name)
            return _original(self, request)

        monkeypatch.setattr(middleware, "process_request", recording)
    return seen


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_the_events_endpoints_run_none_of_the_browser_middleware(api, ran, path):
    body = {"name": "page.viewed", "userId": "ada"}
    response = api.post(path, {"events": [body]} if path.endswith("batch") else body)

    assert response.status_code == 202, response.content
    assert ran == []
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_every_other_path_runs_them_as_django_ships_them(api, client, ran):
    assert api.get("/v1/contacts/nobody").status_code == 404
    assert ran == ["SessionMiddleware", "CsrfViewMiddleware", "AuthenticationMiddleware", "MessageMiddleware"]

    ran.clear()
    client.get("/admin/login/")  # its view checks CSRF once more itself
    assert set(ran) == {
        "SessionMiddleware",
        "CsrfViewMiddleware",
        "AuthenticationMiddleware",
        "MessageMiddleware",
    }


def test_the_admin_still_refuses_a_post_without_its_csrf_token(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})

    assert response.status_code == 403
