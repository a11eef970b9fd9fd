"""The API documentation pages work offline: every asset they load is the service's own, and
behind the gateway's prefix every URL they name carries it (no I/O: a store URL never dialled)."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from shared.http import create_service_app
from shared.settings import load_settings


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.spec_urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if tag == "redoc":
            self.spec_urls.append(attrs["spec-url"])


def _references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def client():
    settings = load_settings({"RAPPORT_ENV": "local"}, store_urls={"probe": "redis://127.0.0.1:1/0"})
    return create_service_app("probe", [], settings=settings, test_config={"TESTING": True}).test_client()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_loads_only_assets_the_service_serves_itself(client, page):
    response = client.get(page)
    assert response.status_code == 200
    urls = _references(response.get_data(as_text=True)).urls
    assert urls, "the page loads no script or style"
    for url in urls:
        assert url.startswith("/docs/assets/") and "//" not in url, url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000, url


def test_swagger_ui_asks_for_the_document_behind_the_gateway_prefix(client):
    html = client.get("/docs", headers={"X-Forwarded-Prefix": "/connections"}).get_data(as_text=True)
    assert 'url: "/connections/openapi.json"' in html
    assert all(url.startswith("/connections/docs/assets/") for url in _references(html).urls)


def test_redoc_asks_for_the_document_behind_the_gateway_prefix(client):
    html = client.get("/redoc", headers={"X-Forwarded-Prefix": "/connections"}).get_data(as_text=True)
    assert _references(html).spec_urls == ["/connections/openapi.json"]


def test_without_a_prefix_the_pages_ask_for_the_document_at_the_root(client):
    html = client.get("/docs").get_data(as_text=True)
    assert 'url: "/openapi.json"' in html


def test_the_docs_assets_need_no_token_and_other_files_are_not_served(client):
    assert client.get("/docs/assets/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/elsewhere/x.js").status_code == 404
    assert client.get("/docs/assets/redoc/../../apps.py").status_code == 404


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_may_show_only_its_own_images(client, page):
    assert client.get(page).headers["Content-Security-Policy"] == "img-src 'self' data:"
