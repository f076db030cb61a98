"""The browser snippet in a real Chromium: a page on an allowed origin sends events and identifies
its visitor; a page on another origin is refused by CORS and stores nothing. Three loopback
servers: Hogsend (the API and the snippet, served as a static file) and two sites, each an
origin of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Error as PlaywrightError

from contacts.models import Event
from contacts.services import api_key_create
from tests.clients.test_readme_examples import readme_block
from tests.support import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Site:
    """A web site on a loopback port of its own, serving `html` (set once the key exists, since
    the key must name the site's origin, which is known only once the port is bound)."""

    def __init__(self) -> None:
        self.html = ""
        owner = self

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve_snippet(self, hogsend_url: str, key: str) -> None:
        self.html = (
            "<!doctype html><title>Pricing</title>"
            f'<script src="{hogsend_url}/static/hogsend/hogsend.js" data-key="{key}"></script>'
            "<h1>Pricing</h1>"
        )


@contextmanager
def running_sites(count: int) -> Iterator[list[Site]]:
    sites = [Site() for _ in range(count)]
    threads = [threading.Thread(target=s.server.serve_forever, daemon=True) for s in sites]
    for thread in threads:
        thread.start()
    try:
        yield sites
    finally:
        for s in sites:
            s.server.shutdown()
            s.server.server_close()


def test_an_allowed_page_tracks_an_anonymous_visitor_then_identifies_them(live_server, page, artifacts_dir):
    with running_sites(1) as [pricing]:
        _, key = api_key_create(name="website", scopes=["public"], allowed_origins=[pricing.origin])
        pricing.serve_snippet(live_server.url, key)

        page.goto(pricing.origin)
        first = page.evaluate("hogsend.track('pricing.viewed', {plan: 'pro'})")
        anonymous = page.evaluate("hogsend.anonymousId()")
        page.reload()
        kept = page.evaluate("hogsend.anonymousId()")
        page.evaluate("hogsend.identify('user_42')")
        page.evaluate("hogsend.track('checkout.started')")
        page.screenshot(path=artifacts_dir / "browser-snippet-allowed.png")

    assert anonymous.startswith("anon_") and kept == anonymous  # kept in localStorage across loads
    assert first["duplicate"] is False
    events = Event.objects.order_by("received_at").values_list(
        "name", "contact__user_id", "properties", "source"
    )
    assert list(events) == [
        ("pricing.viewed", anonymous, {"plan": "pro"}, "browser"),
        ("user.identified", "user_42", {"anonymousId": anonymous}, "browser"),
        ("checkout.started", "user_42", {}, "browser"),
    ]


def test_a_page_on_an_origin_the_key_does_not_allow_is_refused_and_stores_nothing(live_server, page):
    with running_sites(2) as [allowed, elsewhere]:
        _, key = api_key_create(name="website", scopes=["public"], allowed_origins=[allowed.origin])
        elsewhere.serve_snippet(live_server.url, key)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))

        page.goto(elsewhere.origin)
        with pytest.raises(PlaywrightError, match="among the publishable key's allowed origins"):
            page.evaluate("hogsend.track('pricing.viewed')")

    assert Event.objects.count() == 0
    assert any("CORS" in line for line in console), console


def test_the_readmes_snippet_runs_as_written(live_server, page):
    html = readme_block("html", "Clients")
    with running_sites(1) as [site]:
        _, key = api_key_create(name="website", scopes=["public"], allowed_origins=[site.origin])
        site.html = html.replace("http://localhost:8000", live_server.url).replace("pk_...", key)

        page.goto(site.origin)
        wait_until(lambda: Event.objects.count() == 3, timeout=30, what="the three events of the README")

    events = Event.objects.values_list("name", "contact__user_id")
    assert set(events) == {
        ("pricing.viewed", page.evaluate("hogsend.anonymousId()")),
        ("user.identified", "user_123"),
        ("checkout.started", "user_123"),
    }
