"""The GraphiQL page and its asset routes over the ASGI app.

Most tests use a stand-in node_modules with the allow-listed files (and some that must stay
hidden), so they do not depend on npm; the browser test in tests/e2e uses the real files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.__main__ import banner
from app.config import Settings
from app.http.graphiql import ASSET_CACHE_CONTROL, NPM_ASSETS, OWN_ASSETS, availability
from app.main import create_app

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HIDDEN = ["graphiql/package.json", "graphiql/graphiql.min.js.map", "react/index.js"]


@pytest.fixture
def node_modules(tmp_path: Path) -> Path:
    root = tmp_path / "node_modules"
    for name, (relative, _) in NPM_ASSETS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* stand-in for {name} */\n")
    for relative in HIDDEN:
        (root / relative).write_text("must not be served\n")
    return root


@asynccontextmanager
async def client(
    tmp_path: Path,
    node_modules: Path,
    *,
    graphiql: bool = True,
    base_url: str = "http://testserver",
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (the GraphQL endpoint needs its database handle)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", graphiql=graphiql)
    app = create_app(settings, node_modules=node_modules)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url) as http,
    ):
        yield http


def _config(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="graphiql-config" type="application/json">(.*?)</script>', page)
    assert match, page
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def _asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


async def test_a_browser_opening_graphql_gets_the_page(tmp_path: Path, node_modules: Path) -> None:
    async with client(tmp_path, node_modules) as c:
        response = await c.get("/graphql", headers=HTML)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    assert response.headers["cache-control"] == "no-store"
    config = _config(response.text)
    assert config["url"] == "http://testserver/graphql"
    assert config["subscriptionUrl"] == "ws://testserver/graphql"
    assert "products(first: 5)" in config["defaultQuery"]
    urls = _asset_urls(response.text)
    # Every script and stylesheet is ours; the icon is an inline empty data: URL.
    assert sorted(u.split("?")[0] for u in urls if not u.startswith("data:")) == sorted(
        f"/graphiql/assets/{name}" for name in [*NPM_ASSETS, *OWN_ASSETS]
    )
    assert all(u.startswith(("/graphiql/assets/", "data:")) for u in urls)
    for host in ("unpkg", "jsdelivr", "cdnjs", "http://", "https://", "//"):
        assert all(host not in u for u in urls), host


async def test_the_page_csp_allows_no_other_origin(tmp_path: Path, node_modules: Path) -> None:
    async with client(tmp_path, node_modules) as c:
        csp = (await c.get("/graphql", headers=HTML)).headers["content-security-policy"]

    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "http" not in csp
    assert "*" not in csp


async def test_scripts_load_in_dependency_order(tmp_path: Path, node_modules: Path) -> None:
    async with client(tmp_path, node_modules) as c:
        page = (await c.get("/graphql", headers=HTML)).text

    scripts = [
        u.split("?")[0].rsplit("/", 1)[1] for u in re.findall(r'<script defer src="(.*?)"', page)
    ]
    assert scripts == [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "plugin-explorer.umd.js",
        "ordergraph-graphiql.js",
    ]


async def test_the_page_is_inert_to_a_hostile_host_header(
    tmp_path: Path, node_modules: Path
) -> None:
    async with client(tmp_path, node_modules) as c:
        response = await c.get("/graphql", headers={**HTML, "Host": "evil</script><script>x()//"})

    assert response.status_code == 200
    assert "</script><script>" not in response.text
    assert "x()" not in _config(response.text)["url"]
    assert "evil" not in response.headers["content-security-policy"]


async def test_https_pages_use_wss(tmp_path: Path, node_modules: Path) -> None:
    async with client(tmp_path, node_modules, base_url="https://api.example.test") as c:
        config = _config((await c.get("/graphql", headers=HTML)).text)

    assert config["url"] == "https://api.example.test/graphql"
    assert config["subscriptionUrl"] == "wss://api.example.test/graphql"


@pytest.mark.parametrize(
    ("method", "params", "headers", "status"),
    [
        ("GET", {"query": "{ __typename }"}, HTML, 200),  # a query from a browser is GraphQL
        ("GET", {}, {"Accept": "application/json"}, 400),  # GraphQL-over-HTTP: no query is a 400
        ("GET", {}, {"Accept": "application/graphql-response+json, */*"}, 400),
        ("GET", {}, {"Accept": "text/html;q=0"}, 406),  # explicitly not HTML, and nothing else
        ("GET", {}, {}, 400),
        ("POST", {}, HTML, 415),  # POST is always GraphQL: here, one without a JSON body
    ],
)
async def test_graphql_requests_are_not_the_page(
    tmp_path: Path,
    node_modules: Path,
    method: str,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
) -> None:
    async with client(tmp_path, node_modules) as c:
        response = await c.request(method, "/graphql", params=params, headers=headers)

    assert response.status_code == status
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in ("application/json", "application/graphql-response+json")
    body = response.json()
    if status == 200:
        assert body["data"] == {"__typename": "Query"}
        assert "errors" not in body
    else:
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("name", [*NPM_ASSETS, *OWN_ASSETS])
async def test_allow_listed_assets_are_served_for_a_year(
    tmp_path: Path, node_modules: Path, name: str
) -> None:
    relative, media_type = NPM_ASSETS.get(name) or OWN_ASSETS[name]
    path = node_modules / relative if name in NPM_ASSETS else Path(relative)
    async with client(tmp_path, node_modules) as c:
        page = (await c.get("/graphql", headers=HTML)).text
        url = next(u for u in _asset_urls(page) if u.split("?")[0].endswith("/" + name))
        response = await c.get(url)

    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["cache-control"] == ASSET_CACHE_CONTROL
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == path.read_bytes()
    # The URL changes with the content, which is what makes the year-long cache safe.
    assert url.endswith("?v=" + hashlib.sha256(path.read_bytes()).hexdigest()[:16])


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/assets/package.json",
        "/graphiql/assets/graphiql.min.js.map",
        "/graphiql/assets/index.js",
        "/graphiql/assets/graphiql/graphiql.min.js",
        "/graphiql/assets/..%2Fgraphiql%2Fpackage.json",
        "/graphiql/assets/%2E%2E/%2E%2E/app/config.py",
        "/graphiql/assets/",
        "/node_modules/graphiql/graphiql.min.js",
        "/graphiql/graphiql.min.js",
    ],
)
async def test_nothing_else_is_served(tmp_path: Path, node_modules: Path, path: str) -> None:
    async with client(tmp_path, node_modules) as c:
        response = await c.get(path)

    assert response.status_code == 404
    assert "must not be served" not in response.text


async def test_graphiql_false_turns_the_page_and_assets_off(
    tmp_path: Path, node_modules: Path
) -> None:
    async with client(tmp_path, node_modules, graphiql=False) as c:
        page = await c.get("/graphql", headers=HTML)
        asset = await c.get("/graphiql/assets/graphiql.min.js")
        own = await c.get("/graphiql/assets/ordergraph-graphiql.js")

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("application/json")
    assert page.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert asset.status_code == 404
    assert own.status_code == 404


async def test_without_node_modules_the_page_says_how_to_install(tmp_path: Path) -> None:
    async with client(tmp_path, tmp_path / "no-node-modules") as c:
        page = await c.get("/graphql", headers=HTML)
        asset = await c.get("/graphiql/assets/graphiql.min.js")
        api = await c.post("/graphql", json={"query": "{ __typename }"})

    assert page.status_code == 503
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "npm ci" in page.text
    assert "graphiql.min.js" in page.text  # names what is missing
    assert "<script" not in page.text
    assert asset.status_code == 404
    assert api.status_code == 200
    assert api.json()["data"] == {"__typename": "Query"}


DEMO = {"client_id": "c", "client_secret": "s", "token": "t"}


def test_availability_tells_the_truth(tmp_path: Path, node_modules: Path) -> None:
    assert availability(Settings(), node_modules) is None
    missing = availability(Settings(), tmp_path / "no-node-modules")
    assert missing is not None
    assert missing.startswith("not installed")
    assert availability(Settings(graphiql=False), node_modules) == "disabled (GRAPHIQL=false)"
    assert "GraphiQL           disabled (GRAPHIQL=false)" in banner(Settings(graphiql=False), DEMO)
