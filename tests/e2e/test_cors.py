"""CORS_ALLOWED_ORIGINS: preflights and headers on the API's paths, and WebSocket handshakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from app.config import ConfigError, CorsSettings, Settings
from app.db.engine import Database
from app.main import create_app
from bench.servers import in_process as live_server
from tests.e2e.ws_support import TRANSPORT_WS

ALLOWED = "http://localhost:5173"
OTHER = "https://evil.example"
API_PATHS = ("/graphql", "/oauth/token", "/oauth/revoke", "/oauth/introspect")


def _preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": headers,
    }


@pytest.fixture(scope="module")
async def client(http_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=str(http_db.url), cors=CorsSettings((ALLOWED,)))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.mark.parametrize("path", API_PATHS)
async def test_preflight_from_an_allowed_origin(client: httpx.AsyncClient, path: str) -> None:
    response = await client.options(path, headers=_preflight(ALLOWED))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", API_PATHS)
async def test_preflight_from_another_origin_is_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.options(path, headers=_preflight(OTHER))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_answers_carry_the_origin_and_expose_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    body = {"query": "{ products(first: 1) { edges { node { sku } } } }"}
    ok = await client.post("/graphql", json=body, headers={"origin": ALLOWED})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()
    assert "origin" in ok.headers["vary"].lower()
    other = await client.post("/graphql", json=body, headers={"origin": OTHER})
    assert "access-control-allow-origin" not in other.headers
    metadata = await client.get(
        "/.well-known/oauth-authorization-server", headers={"origin": ALLOWED}
    )
    assert metadata.headers["access-control-allow-origin"] == ALLOWED


async def test_sign_in_pages_are_not_opened_to_other_origins(client: httpx.AsyncClient) -> None:
    response = await client.options("/oauth/authorize", headers=_preflight(ALLOWED))
    assert "access-control-allow-origin" not in response.headers


async def test_nothing_is_allowed_by_default(http_db: Database) -> None:
    app = create_app(Settings(database_url=str(http_db.url)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.options("/graphql", headers=_preflight(ALLOWED))
            answer = await c.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
    assert "origin" not in answer.headers.get("vary", "").lower(), "no CORS work at all"


async def _handshake(url: str, origin: str | None) -> str:
    async with connect(
        url,
        subprotocols=[Subprotocol(TRANSPORT_WS)],
        origin=Origin(origin) if origin else None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        return str(json.loads(await asyncio.wait_for(ws.recv(), 10.0))["type"])


async def test_websocket_handshakes_follow_the_same_list(http_db: Database) -> None:
    app = create_app(Settings(database_url=str(http_db.url), cors=CorsSettings((ALLOWED,))))
    async with live_server(app, websockets=True) as base:
        url = base.replace("http://", "ws://") + "/graphql"
        assert await _handshake(url, ALLOWED) == "connection_ack"
        assert await _handshake(url, None) == "connection_ack"  # not a browser
        assert await _handshake(url, base) == "connection_ack"  # the server's own pages
        with pytest.raises(InvalidStatus) as refused:
            await _handshake(url, OTHER)
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}, "cannot be true"),
        ({"CORS_ALLOWED_ORIGINS": "*, http://a.test"}, "either *"),
        ({"CORS_ALLOWED_ORIGINS": "http://a.test/"}, "is not an origin"),
        ({"CORS_ALLOWED_ORIGINS": "a.test"}, "is not an origin"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_settings_are_read() -> None:
    cors = Settings.from_env(
        {"CORS_ALLOWED_ORIGINS": "http://localhost:5173,https://App.example.com"}
    ).cors
    assert cors.allowed_origins == ("http://localhost:5173", "https://app.example.com")
    assert not cors.allow_credentials
    assert Settings.from_env({"CORS_ALLOWED_ORIGINS": "*"}).cors.any_origin
