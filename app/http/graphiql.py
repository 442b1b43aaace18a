"""GraphiQL for developers, served entirely by this server so it works offline and leaks nothing.

The page loads React, ReactDOM, GraphiQL and the explorer plugin from an allow-list of files in
`node_modules` (installed by `npm ci` from the committed lock), never from a CDN: a developer on a
plane, or behind a corporate proxy, still gets a working IDE, and the page's Content-Security-Policy
can forbid every other origin. Only the allow-listed files are reachable; `node_modules` itself is
never exposed.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.config import PROJECT_ROOT, Settings

NODE_MODULES = PROJECT_ROOT / "node_modules"
ASSETS_PATH = "/graphiql/assets"
_HERE = Path(__file__).resolve().parent

_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"

# Asset name (the last URL segment) -> (where it lives, content type). Order matters for scripts:
# the page loads them in this order, and each UMD build expects the globals of those before it.
NPM_ASSETS: dict[str, tuple[str, str]] = {
    "react.production.min.js": ("react/umd/react.production.min.js", _JS),
    "react-dom.production.min.js": ("react-dom/umd/react-dom.production.min.js", _JS),
    "graphiql.min.js": ("graphiql/graphiql.min.js", _JS),
    "plugin-explorer.umd.js": ("@graphiql/plugin-explorer/dist/index.umd.js", _JS),
    "graphiql.min.css": ("graphiql/graphiql.min.css", _CSS),
    "plugin-explorer.css": ("@graphiql/plugin-explorer/dist/style.css", _CSS),
}
# Our own files, after those: external, because the CSP allows no inline script or style.
OWN_ASSETS: dict[str, tuple[Path, str]] = {
    "ordergraph-graphiql.js": (_HERE / "graphiql.js", _JS),
    "ordergraph-graphiql.css": (_HERE / "graphiql.css", _CSS),
}

# A year, immutable: every asset URL carries its content hash, so a changed file is a new URL.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

# No origin but our own. Fonts and icons come as data: URLs inside graphiql.min.css. 'self' in
# connect-src covers the same-origin ws:/wss: subscription URL in CSP Level 3 browsers.
PAGE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
# The install-instructions page has no scripts, styles or images at all.
UNAVAILABLE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

INSTALL_HINT = (
    "Install Node.js and npm, then run `npm ci --no-audit --no-fund` in the project directory "
    "(`make run` does it for you when npm is on PATH), and restart the server."
)

DEFAULT_QUERY = """\
# Welcome to ordergraph. Ctrl-Enter runs the query.
#
# To act as a signed-in user, add this
# in "Headers" below:
# {"Authorization": "Bearer <token>"}

{
  products(first: 5) {
    edges { node { id sku name price { amount currency } stock } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@dataclass(frozen=True)
class Asset:
    name: str
    path: Path
    media_type: str
    version: str  # a short content hash, to bust caches when the file changes


@dataclass(frozen=True)
class Assets:
    """The allow-listed files that exist, and the ones that do not."""

    files: dict[str, Asset]
    missing: tuple[str, ...]

    @property
    def available(self) -> bool:
        return not self.missing

    @classmethod
    def load(cls, node_modules: Path = NODE_MODULES) -> Assets:
        wanted = {name: (node_modules / rel, media) for name, (rel, media) in NPM_ASSETS.items()}
        wanted.update(OWN_ASSETS)
        files: dict[str, Asset] = {}
        missing: list[str] = []
        for name, (path, media_type) in wanted.items():
            if not path.is_file():
                missing.append(str(path))
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            files[name] = Asset(name, path, media_type, digest)
        return cls(files=files, missing=tuple(missing))

    def url(self, root_path: str, name: str) -> str:
        return f"{root_path}{ASSETS_PATH}/{name}?v={self.files[name].version}"


def _json_for_html(value: object) -> str:
    """JSON that cannot close the <script> element it sits in, whatever the strings hold."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class GraphiQL:
    """The page and its assets for one application."""

    def __init__(self, assets: Assets) -> None:
        self.assets = assets

    def page(self, request: Request) -> Response:
        headers = {
            "Cache-Control": "no-store",
            "Vary": "Accept",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if not self.assets.available:
            headers["Content-Security-Policy"] = UNAVAILABLE_CSP
            return HTMLResponse(self._unavailable_html(), status_code=503, headers=headers)
        headers["Content-Security-Policy"] = PAGE_CSP
        return HTMLResponse(self._page_html(request), headers=headers)

    def _page_html(self, request: Request) -> str:
        root = str(request.scope.get("root_path", ""))
        endpoint = request.url.replace(query="", fragment="")
        # Derived from the request, so the page works on whatever host and port it was opened
        # with; the start script upgrades ws: to wss: when the page itself came over https.
        ws_scheme = "wss" if endpoint.scheme == "https" else "ws"
        config = {
            "url": str(endpoint),
            "subscriptionUrl": str(endpoint.replace(scheme=ws_scheme)),
            "defaultQuery": DEFAULT_QUERY,
        }
        styles = "\n".join(
            f'  <link rel="stylesheet" href="{html.escape(self.assets.url(root, asset.name))}">'
            for asset in self.assets.files.values()
            if asset.media_type == _CSS
        )
        scripts = "\n".join(
            f'  <script defer src="{html.escape(self.assets.url(root, asset.name))}"></script>'
            for asset in self.assets.files.values()
            if asset.media_type == _JS
        )
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <link rel="icon" href="data:,">
  <title>ordergraph · GraphiQL</title>
{styles}
  <script id="graphiql-config" type="application/json">{_json_for_html(config)}</script>
{scripts}
</head>
<body>
  <div id="graphiql">
    <noscript>GraphiQL needs JavaScript. The API itself answers POST /graphql.</noscript>
  </div>
</body>
</html>
"""

    def _unavailable_html(self) -> str:
        missing = "\n".join(
            f"    <li><code>{html.escape(m)}</code></li>" for m in self.assets.missing
        )
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ordergraph · GraphiQL is not installed</title>
</head>
<body>
  <h1>GraphiQL's files are not installed</h1>
  <p>This server serves GraphiQL from its own <code>node_modules</code> (never from a CDN), and
  those files are missing. {html.escape(INSTALL_HINT)}</p>
  <p>The GraphQL API works regardless: send queries with <code>POST /graphql</code>.</p>
  <p>Missing files:</p>
  <ul>
{missing}
  </ul>
</body>
</html>
"""

    async def asset(self, request: Request) -> Response:
        asset = self.assets.files.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(
            asset.path,
            media_type=asset.media_type,
            headers={"Cache-Control": ASSET_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
        )

    def routes(self) -> list[Route]:
        return [Route(ASSETS_PATH + "/{name}", self.asset, methods=["GET"], name="graphiql_asset")]


def create_graphiql(settings: Settings, node_modules: Path = NODE_MODULES) -> GraphiQL | None:
    """GraphiQL for an application, or None when the GRAPHIQL setting turns it off."""
    return GraphiQL(Assets.load(node_modules)) if settings.graphiql else None


def availability(settings: Settings, node_modules: Path = NODE_MODULES) -> str | None:
    """Why GraphiQL is not available (for the `make run` banner), or None when it is."""
    if not settings.graphiql:
        return "disabled (GRAPHIQL=false)"
    assets = Assets.load(node_modules)
    if not assets.available:
        return (
            "not installed (its files in node_modules are missing): install Node.js and npm,"
            " then `make run` again"
        )
    return None
