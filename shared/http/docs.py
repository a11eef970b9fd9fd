"""The browsable API documentation, served by the service itself: Swagger UI at ``/docs`` and
ReDoc at ``/redoc``, their scripts and styles under ``/docs/assets/``, so the pages work with
no network but the one that reaches the service.

The assets come from the ``drf-spectacular-sidecar`` package (pinned in pyproject.toml), which
ships the distribution builds of Swagger UI and ReDoc as plain files. Its Python module imports
Django, which nothing here needs: the files are found without importing it.

Every URL a page names is built per request with ``url_for``, so behind the gateway (which
sends ``X-Forwarded-Prefix``, applied by ProxyFix in shared/http/app.py) ``/connections/docs``
asks for ``/connections/openapi.json`` and ``/connections/docs/assets/...``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import flask
from flask import Blueprint, send_from_directory, url_for

ASSETS_PACKAGE = "drf_spectacular_sidecar"
BLUEPRINT = "rapport-docs"
# A year: the files change only with the package's pinned version, which is in the URL's query.
ASSET_MAX_AGE = 365 * 24 * 3600


def _assets_root() -> Path:
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{ASSETS_PACKAGE} is not installed: the docs pages have no assets")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / ASSETS_PACKAGE


def _assets_version() -> str:
    from importlib.metadata import version

    return version(ASSETS_PACKAGE.replace("_", "-"))


# The files each page loads, by the folder the package ships them in.
SWAGGER_UI = "swagger-ui-dist"
REDOC = "redoc/bundles"


def assets_blueprint() -> Blueprint:
    """Serve the packaged Swagger UI and ReDoc files (and nothing else of the package)."""
    root = _assets_root()
    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix="/docs/assets")
    folders = {"swagger-ui": root / SWAGGER_UI, "redoc": root / REDOC}

    @blueprint.get("/<any('swagger-ui', 'redoc'):ui>/<path:filename>")
    def asset(ui: str, filename: str):
        return send_from_directory(folders[ui], filename, max_age=ASSET_MAX_AGE)

    return blueprint


def asset_url(ui: str, filename: str) -> str:
    return url_for(f"{BLUEPRINT}.asset", ui=ui, filename=filename, v=_assets_version())


# ReDoc's sidebar shows its maker's logo from their CDN (and hides it when that fails): the
# pages may show images of their own origin and inline ones only, so they ask for nothing else.
PAGE_POLICY = "img-src 'self' data:"


def _page(html: str) -> flask.Response:
    response = flask.Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def swagger_ui_page(title: str, spec_url: str, config: dict) -> flask.Response:
    return _page(flask.render_template_string(
        _SWAGGER_UI_PAGE, title=title, spec_url=spec_url, config=config,
        css=asset_url("swagger-ui", "swagger-ui.css"), bundle=asset_url("swagger-ui", "swagger-ui-bundle.js"),
        preset=asset_url("swagger-ui", "swagger-ui-standalone-preset.js")))


def redoc_page(title: str, spec_url: str) -> flask.Response:
    return _page(flask.render_template_string(_REDOC_PAGE, title=title, spec_url=spec_url,
                                              script=asset_url("redoc", "redoc.standalone.js")))


_SWAGGER_UI_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{{ title }}</title>
    <link href="{{ css }}" rel="stylesheet" type="text/css">
  </head>
  <body>
    <div id="swagger-ui-container"></div>
    <script src="{{ preset }}"></script>
    <script src="{{ bundle }}"></script>
    <script>
      window.onload = function () {
        var config = {url: {{ spec_url | tojson }}, dom_id: "#swagger-ui-container"};
        var overrides = {{ config | tojson }};
        for (var name in overrides) { config[name] = overrides[name]; }
        window.ui = SwaggerUIBundle(config);
      };
    </script>
  </body>
</html>
"""

_REDOC_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{{ title }}</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="{{ spec_url }}" lazy-rendering></redoc>
    <script src="{{ script }}"></script>
  </body>
</html>
"""
