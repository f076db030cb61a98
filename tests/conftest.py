from __future__ import annotations

import pytest

from contacts.services import api_key_create

pytest_plugins = ["journeys.testing"]


@pytest.fixture
def api_key_secret(db) -> str:
    _, secret = api_key_create(name="tests", scopes=["ingest", "read"])
    return secret


@pytest.fixture
def api(client, api_key_secret):
    """The Django test client with a bearer key for the ingest and read scopes."""

    class Api:
        def __init__(self, secret: str) -> None:
            self.headers = {"Authorization": f"Bearer {secret}"}

        def post(self, path: str, body=None, **headers):
            return client.post(
                path, body, content_type="application/json", headers={**self.headers, **headers}
            )

        def put(self, path: str, body=None, **headers):
            return client.put(
                path, body, content_type="application/json", headers={**self.headers, **headers}
            )

        def get(self, path: str, **headers):
            return client.get(path, headers={**self.headers, **headers})

    return Api(api_key_secret)


BROWSER_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's), driven by Playwright."""
    import os
    import shutil

    from playwright.sync_api import sync_playwright

    executable = (
        os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not executable:
        pytest.fail("Chromium is not installed; bin/bootstrap installs Debian's chromium package")
    # Playwright's sync API runs its own event loop; Django must allow sync ORM calls beside it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where browser tests save screenshots (kept by CI as test artifacts)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def engine():
    """A real Hatchet engine (`bin/engine start`, idempotent); returns the script that runs it."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bin" / "engine"
    subprocess.run([str(script), "start"], check=True, timeout=600)
    return script


@pytest.fixture(scope="session", autouse=True)
def collected_static(tmp_path_factory):
    """Static files collected once per session, the way production collects them (hashed names,
    gzip copies, a manifest), so every page a test renders resolves its assets as it will in
    production: a template naming a file that does not exist fails here, not in front of a user."""
    from django.core.management import call_command
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(scope="session")
def studio_server(django_db_setup, collected_static, tmp_path_factory):
    """The web process as `bin/run` serves it (gunicorn, DEBUG off, WhiteNoise over the collected
    static files), on the test database: pages see what transactional tests commit."""
    from tests.support import gunicorn_server

    with gunicorn_server(tmp_path_factory.mktemp("web"), static_root=collected_static) as server:
        yield server


@pytest.fixture
def studio_browser(browser, studio_server, artifacts_dir):
    """A 1400 px wide Chromium page on the production-shaped server; see tests/browser.py."""
    from tests.browser import StudioBrowser

    studio = StudioBrowser(browser, studio_server, artifacts_dir)
    yield studio
    studio.close()
