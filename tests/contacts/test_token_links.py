"""Token links (preference center, unsubscribe, open pixel, click redirects) are what `reverse`
gives, with the route reversed once per process, not once per link."""

from __future__ import annotations

import pytest
from django.urls import reverse, set_script_prefix

from contacts import links
from contacts.links import token_url

ROUTES = ["preferences:center", "preferences:unsubscribe", "emails:open", "emails:click", "emails:answer"]


@pytest.fixture(autouse=True)
def _fresh_routes():
    links._routes.clear()
    yield
    links._routes.clear()
    set_script_prefix("/")


@pytest.mark.parametrize("name", ROUTES)
@pytest.mark.parametrize("token", ["abc", "0b4e-uuid:1vX2:Zm9v_bar-baz", "e.7:sig", "with space?&%é"])
def test_a_token_url_is_the_reversed_url(settings, name, token):
    settings.PUBLIC_BASE_URL = "https://mail.example"
    assert token_url(name, token) == "https://mail.example" + reverse(name, args=[token])
    assert token_url(name, token) == "https://mail.example" + reverse(name, args=[token])  # cached


def test_the_script_prefix_and_the_base_url_are_honoured(settings):
    settings.PUBLIC_BASE_URL = "https://a.example"
    assert token_url("emails:open", "t") == "https://a.example/e/o/t/"
    set_script_prefix("/hogsend/")
    settings.PUBLIC_BASE_URL = "https://b.example"
    assert token_url("emails:open", "t") == "https://b.example/hogsend/e/o/t/"


def test_each_route_is_reversed_once_for_many_links(monkeypatch):
    calls = []
    real = links.reverse
    monkeypatch.setattr(links, "reverse", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    for i in range(50):
        token_url("emails:click", f"email-{i}:sig")
        token_url("preferences:center", f"contact-{i}:ts:sig")
    assert sorted(calls) == ["emails:click", "preferences:center"]
