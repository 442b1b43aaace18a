"""The two ways to start the server, over real HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from app.db.urls import DatabaseUrl
from app.seed import DEMO_CUSTOMER_EMAIL
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeUrl

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
    assert response.json()["data"] == {"products": {"totalCount": 0}}


def test_dev_seeds_once_and_prints_where_things_are(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}"}
    with live_server(env, tmp_path / "first.log", command="dev") as server:
        first = _post(server.base_url, COUNTS).json()
        banner = server.log_text()
        # The banner's "Try it" command, run as printed, answers `me` for a demo user.
        lines = banner.splitlines()
        start = next(i for i, line in enumerate(lines) if "Try it" in line)
        command = "\n".join(lines[start : start + 2]).split("Try it", 1)[1]
        tried = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False
        )
        # Without OAUTH_ISSUER, the issuer is where this process listens (PORT is not 8000).
        metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()
    assert first["data"] == {"products": {"totalCount": 50}}
    assert f"{server.base_url}/graphql" in banner
    assert "seeded the demo data set" in banner
    assert tried.returncode == 0, tried.stderr
    assert json.loads(tried.stdout)["data"] == {"me": {"email": DEMO_CUSTOMER_EMAIL}}
    assert metadata["issuer"] == server.base_url
    assert metadata["token_endpoint"] == f"{server.base_url}/oauth/token"

    with live_server(env, tmp_path / "again.log", command="dev") as server:
        again = _post(server.base_url, COUNTS).json()
    banner = server.log_text()
    assert again["data"] == first["data"]
    assert "seeding skipped" in banner


def test_debug_mode_reports_statements(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'debug.sqlite3'}", "DEBUG": "true"}
    with live_server(env, tmp_path / "debug.log", command="dev") as server:
        body = _post(server.base_url, "{ products(first: 3) { edges { node { sku } } } }").json()
    assert body["extensions"]["debug"]["sqlStatements"] == 1
    assert body["extensions"]["debug"]["sqlMs"] >= 0


REGISTER = """mutation($input: RegisterUserInput!) {
  registerUser(input: $input) { user { id } errors { code } } }"""


def _sign_up(base_url: str, n: int, forwarded_for: str) -> int:
    body = {
        "query": REGISTER,
        "variables": {"input": {"email": f"fwd{n}@example.com", "password": "Sturdy-pass-1"}},
    }
    headers = {
        "X-Forwarded-For": forwarded_for,
        "Accept": "application/graphql-response+json",
    }
    return httpx.post(f"{base_url}/graphql", json=body, headers=headers, timeout=30).status_code


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    base = {"SIGN_UPS_PER_ADDRESS": "1"}
    trusted = {
        **base,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'trusted.sqlite3'}",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    with live_server(trusted, tmp_path / "trusted.log", command="serve") as server:
        behind_proxy = [
            _sign_up(server.base_url, 1, "203.0.113.1"),
            _sign_up(server.base_url, 2, "203.0.113.2"),
            _sign_up(server.base_url, 3, "203.0.113.1"),
        ]
    untrusted = {**base, "DATABASE_URL": f"sqlite:///{tmp_path / 'direct.sqlite3'}"}
    with live_server(untrusted, tmp_path / "direct.log", command="serve") as server:
        direct = [
            _sign_up(server.base_url, 1, "203.0.113.1"),
            _sign_up(server.base_url, 2, "203.0.113.2"),
        ]

    assert behind_proxy == [200, 200, 429], "each forwarded client has its own bucket"
    assert direct == [200, 429], "a forged X-Forwarded-For buys no new bucket"
