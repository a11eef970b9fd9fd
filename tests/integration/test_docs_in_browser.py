"""The docs pages render in a real browser (Debian's headless Chromium, driven by Playwright)
that may reach nothing but loopback: every script and style comes from the service itself."""
from __future__ import annotations

import importlib
import shutil
import threading
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

BROWSERS = ("chromium-headless-shell", "chromium")


@pytest.fixture(scope="module")
def docs_url(settings):
    app = importlib.import_module("services.connections.app").create_app({"TESTING": True}, settings=settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def offline_page():
    """``(page, refused)``: a browser page whose requests off loopback are refused and listed."""
    executable = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    assert executable, f"no headless Chromium on PATH ({' or '.join(BROWSERS)}: apt-get install chromium-headless-shell)"
    refused: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            yield page, refused
        finally:
            browser.close()


def test_swagger_ui_renders_the_operations_with_no_network_but_loopback(docs_url, offline_page):
    page, refused = offline_page
    refused.clear()
    page.goto(f"{docs_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    page.wait_for_load_state("networkidle")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/invitations" in p for p in paths), paths
    assert refused == []


def test_redoc_renders_the_operations_with_no_network_but_loopback(docs_url, offline_page):
    page, refused = offline_page
    refused.clear()
    page.goto(f"{docs_url}/redoc")
    page.wait_for_function("document.body.innerText.includes('/v1/invitations/{invitation_id}/accept')",
                           timeout=20_000)
    page.wait_for_load_state("networkidle")  # ReDoc's sidebar logo comes last, once rendered
    assert refused == []
