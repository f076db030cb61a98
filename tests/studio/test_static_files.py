"""The production-shaped web process serves the Studio's static files itself: collected, hashed,
compressed and cached for good, with DEBUG on or off."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


def stylesheets_of(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)


def test_the_login_page_names_hashed_stylesheets_that_gunicorn_serves_gzipped_and_cached(studio_server):
    html = httpx.get(f"{studio_server.url}/admin/login/").text
    sheets = stylesheets_of(html)
    assert sheets, html
    for href in sheets:
        assert re.search(r"\.[0-9a-f]{12}\.css$", href), f"{href} is not a content-hashed name"
        response = httpx.get(f"{studio_server.url}{href}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, href
        assert response.headers["content-type"].startswith("text/css")
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["cache-control"] == "max-age=315360000, public, immutable"
    unhashed = httpx.get(f"{studio_server.url}/static/admin/css/base.css")
    assert unhashed.status_code == 200
    assert "immutable" not in unhashed.headers["cache-control"]  # a name that changes under it


def test_a_file_that_was_never_collected_is_a_404(studio_server):
    assert httpx.get(f"{studio_server.url}/static/admin/css/nothing-here.css").status_code == 404


def test_with_debug_on_the_same_server_serves_the_same_files(collected_static, tmp_path):
    with gunicorn_server(tmp_path, static_root=collected_static, DEBUG="true") as server:
        html = httpx.get(f"{server.url}/admin/login/").text
        sheets = stylesheets_of(html)
        assert sheets, html
        for href in sheets:
            response = httpx.get(f"{server.url}{href}")
            assert response.status_code == 200, href
            assert response.headers["content-type"].startswith("text/css")
