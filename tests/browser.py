"""Driving the Studio in a real Chromium against the production-shaped web process.

Every page visit checks what an operator would notice first: the page and every stylesheet,
script, image and font it asked for answered below 400, and the admin stylesheet was applied (a
computed style, not the HTML). Each visit saves a full-page screenshot, 1400 px wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ASSET_TYPES = {"stylesheet", "script", "image", "font"}
WIDTH = 1400


class StudioBrowser:
    def __init__(self, browser: Any, server: Any, artifacts_dir: Path) -> None:
        self.server = server
        self.artifacts_dir = artifacts_dir
        self.context = browser.new_context(viewport={"width": WIDTH, "height": 900})
        self.page = self.context.new_page()
        self.failed: list[str] = []
        self.page.on("response", self._on_response)
        self.page.on("requestfailed", self._on_request_failed)

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type in ASSET_TYPES:
            self.failed.append(f"{response.status} {response.request.resource_type} {response.url}")

    def _on_request_failed(self, request: Any) -> None:
        if request.resource_type in ASSET_TYPES:
            self.failed.append(f"failed {request.resource_type} {request.url}: {request.failure}")

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def login(self, username: str = "operator", password: str = "correct horse") -> None:
        self.visit("/admin/login/", shot="studio-login.png", selector="#login-form")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_selector("#content-main")
        self.check(shot="studio-index.png")

    def visit(self, path: str, *, shot: str, selector: str = "#content") -> Any:
        self.failed.clear()
        response = self.page.goto(self.url(path), wait_until="load")
        assert response is not None and response.status == 200, (
            f"{path} answered {response and response.status}"
        )
        self.page.wait_for_selector(selector)
        self.check(shot=shot)
        return self.page

    def check(self, *, shot: str) -> None:
        """No failed asset, the admin stylesheet applied, and a screenshot of the whole page."""
        self.page.wait_for_load_state("load")
        assert not self.failed, f"{self.page.url} failed to load: {self.failed}"
        styled = self.page.evaluate(
            """() => {
                const sheets = [...document.querySelectorAll('link[rel=stylesheet]')];
                const header = document.querySelector('#header');
                return {
                    sheets: sheets.length,
                    unloaded: sheets.filter(l => !l.sheet).map(l => l.href),
                    bodyMargin: getComputedStyle(document.body).marginTop,
                    headerBackground: header ? getComputedStyle(header).backgroundColor : null,
                };
            }"""
        )
        assert styled["sheets"] and not styled["unloaded"], f"{self.page.url}: {styled}"
        # The admin's base.css sets body margin 0 (a browser's own is 8px) and colours the header.
        assert styled["bodyMargin"] == "0px", f"{self.page.url} is not styled: {styled}"
        assert styled["headerBackground"] not in (None, "rgba(0, 0, 0, 0)"), f"{self.page.url}: {styled}"
        self.page.screenshot(path=str(self.artifacts_dir / shot), full_page=True)

    def close(self) -> None:
        self.context.close()
