"""The two ways to start the server, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.db.urls import DatabaseUrl
from tests.conftest import MakeUrl
from tests.e2e.live_server import live_server

COUNTS = "{ products(first: 0) { totalCount } }"


def _post(base_url: str, query: str) -> httpx.Response:
    return httpx.post(f"{base_url}/graphql", json={"query": query}, timeout=30)


def _raw(url: DatabaseUrl) -> str:
    return url.url.render_as_string(hide_password=False)


def test_serve_migrates_and_never_seeds(backend: str, make_url: MakeUrl, tmp_path: Path) -> None:
    url = make_url(backend, "serve")
    env = {"DATABASE_URL": _raw(url)}
    with live_server(env, tmp_path / "serve.log", command="serve") as server:
        health = httpx.get(f"{server.base_url}/healthz")
        response = _post(server.base_url, COUNTS)
    assert health.json() == {"status": "ok"}
    assert response.status_code == 200
    assert response.json() == {"data": {"products": {"totalCount": 0}}}


def test_dev_seeds_once_and_prints_where_things_are(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}"}
    with live_server(env, tmp_path / "first.log", command="dev") as server:
        first = _post(server.base_url, COUNTS).json()
    banner = server.log_text()
    assert first == {"data": {"products": {"totalCount": 50}}}
    assert f"{server.base_url}/graphql" in banner
    assert "seeded the demo data set" in banner

    with live_server(env, tmp_path / "again.log", command="dev") as server:
        again = _post(server.base_url, COUNTS).json()
    banner = server.log_text()
    assert again == first
    assert "seeding skipped" in banner


def test_debug_mode_reports_statements(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'debug.sqlite3'}", "DEBUG": "true"}
    with live_server(env, tmp_path / "debug.log", command="dev") as server:
        body = _post(server.base_url, "{ products(first: 3) { edges { node { sku } } } }").json()
    assert body["extensions"]["debug"]["sqlStatements"] == 1
    assert body["extensions"]["debug"]["sqlMs"] >= 0
