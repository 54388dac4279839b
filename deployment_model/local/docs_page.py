"""GET /docs on the local server: Swagger UI for the OpenAPI document, to try the API from a browser.

Every asset is served from this server (`make swagger-ui` puts npm's swagger-ui-dist in .vendor/swagger-ui), so
the page works offline, and its Content-Security-Policy lets the browser load nothing from elsewhere. It is a
local-run feature only: the Lambda images never carry it.

The page uses the document's servers (this server). `/docs?server=<stage URL>` adds a deployed stage to the
page's server list; the document's x-api-key security scheme gives the page an Authorize button for its key
(the stage must allow this page's origin: the stack's AllowedOrigin parameter).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DOCS_PATH = "/docs"
ASSETS_ENV = "SWAGGER_UI_DIR"
DEFAULT_ASSETS = Path(__file__).resolve().parents[2] / ".vendor" / "swagger-ui"
# The only files served under /docs/: the page's own script and Swagger UI's assets, never a path from the URL.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src *; frame-ancestors 'none'"
)

Answer = tuple[int, dict[str, list[str]], bytes]

PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ML service API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

# Loads the document, adds ?server=<URL> (a deployed stage) to its servers, and starts Swagger UI on it.
INIT_SCRIPT = b"""(async () => {
  const spec = await (await fetch("/openapi.json")).json();
  const stage = new URLSearchParams(window.location.search).get("server");
  if (stage) {
    spec.servers = [{url: stage, description: "deployed stage"}, ...(spec.servers || [])];
  }
  window.ui = SwaggerUIBundle({spec, dom_id: "#swagger-ui", deepLinking: true});
})();
"""


def serves(path: str) -> bool:
    return path == DOCS_PATH or path.startswith(DOCS_PATH + "/")


def answer(path: str) -> Answer:
    """The page, its script or an asset; a 404 naming what exists (or how to install the assets) otherwise."""
    if path in (DOCS_PATH, DOCS_PATH + "/"):
        # Without Swagger UI the page would render blank: say how to install it instead.
        if not (assets_dir() / "swagger-ui-bundle.js").is_file():
            return _not_installed()
        return _ok("text/html; charset=utf-8", PAGE)
    name = path.removeprefix(DOCS_PATH + "/")
    if name == "init.js":
        return _ok("text/javascript; charset=utf-8", INIT_SCRIPT)
    if name not in ASSET_TYPES:
        return _not_found(f"no {path}; the page is at {DOCS_PATH}")
    asset = assets_dir() / name
    if not asset.is_file():
        return _not_installed()
    return _ok(ASSET_TYPES[name], asset.read_bytes())


def _not_installed() -> Answer:
    return _not_found(
        f"Swagger UI is not installed in {assets_dir()}: run `make swagger-ui` (needs npm), "
        f"or point {ASSETS_ENV} at a folder holding swagger-ui-dist's files"
    )


def assets_dir() -> Path:
    return Path(os.environ.get(ASSETS_ENV) or DEFAULT_ASSETS)


def _ok(content_type: str, data: bytes) -> Answer:
    headers = {"Content-Type": [content_type], "Content-Security-Policy": [CONTENT_SECURITY_POLICY]}
    return 200, headers, data


def _not_found(message: str) -> Answer:
    body = json.dumps({"error": "route_not_found", "message": message}).encode()
    return 404, {"Content-Type": ["application/json"]}, body
