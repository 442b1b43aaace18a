"""The HTTP edge (app.http.edge) on a small Starlette app built as app.main builds the real one.

/graphql is served by the edge itself (the short way) unless CORS must see the request; every
other route passes the layers (the long way). Each behaviour is checked both ways, against the
same app built without the short way, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.auth.errors import InvalidCredentials, TooManyRequests
from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.config import CorsSettings
from app.http.auth_middleware import AuthMiddleware
from app.http.cors import CorsMiddleware
from app.http.edge import Edge, GraphQLRoute
from app.http.limits import BodyLimit, BodyLimitMiddleware
from app.http.request_id import STATE_KEY

ORIGIN = "https://app.example"
LIMIT = 200


class Authenticator:
    """Stands in for app.auth.authenticator: the credential names the outcome."""

    async def authenticate(self, headers: Mapping[str, str], address: str = "") -> Principal:
        authorization = headers.get("authorization")
        if authorization == "Bearer bad":
            raise InvalidCredentials("the access token is malformed")
        if authorization == "Bearer twice":
            raise InvalidCredentials("send one authorization header", "invalid_request")
        if authorization == "Bearer busy":
            raise TooManyRequests(7)
        if authorization == "Bearer client":
            return Principal(PrincipalKind.CLIENT, client_id="c1")
        return ANONYMOUS


class Echo:
    """Stands in for the GraphQL endpoint (an ASGI app, as it is): echoes what the layers before
    it left, the principal and the request ID, and the body."""

    def __init__(self) -> None:
        self.routed: list[bool] = []  # per request: whether Starlette's router passed it on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.routed.append("endpoint" in scope)
        await echo(scope, receive, send)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("query_string") == b"crash":
        raise RuntimeError("secret detail")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    state = scope["state"]
    answer = orjson.dumps(
        {
            "principal": state["principal"].kind.value,
            "requestId": state[STATE_KEY],
            "body": body.decode(),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
                (b"x-content-type-options", b"a copy the edge replaces"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def make_app(*, short_way: bool, cors: bool = False, graphql: Echo | None = None) -> Starlette:
    limit = BodyLimit(LIMIT, read_timeout=1.0)
    graphql = graphql or Echo()
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
        ],
        middleware=[
            Middleware(
                Edge,
                hsts_seconds=60,
                graphql=GraphQLRoute(graphql, limit, cors=cors) if short_way else None,
            ),
            *(
                [Middleware(CorsMiddleware, settings=CorsSettings(allowed_origins=(ORIGIN,)))]
                if cors
                else []
            ),
            Middleware(BodyLimitMiddleware, limit=limit),
            Middleware(AuthMiddleware, paths=("/graphql",)),
        ],
    )
    app.state.og = SimpleNamespace(auth=SimpleNamespace(authenticator=Authenticator()))
    return app


def client(app: Starlette, base_url: str = "http://t") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url
    )


async def both_ways(method: str, url: str, **kwargs: Any) -> list[httpx.Response]:
    """The same request to the app with and without the edge's own /graphql."""
    base_url = kwargs.pop("base_url", "http://t")
    answers = []
    for short_way in (True, False):
        async with client(make_app(short_way=short_way), base_url) as c:
            answers.append(await c.request(method, url, **kwargs))
    return answers


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, with the (fresh each time) request ID taken out."""
    request_id = response.headers["x-request-id"]
    headers = [
        (name, value.replace(request_id, "<id>")) for name, value in response.headers.multi_items()
    ]
    return response.status_code, headers, response.content.replace(request_id.encode(), b"<id>")


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({"authorization": "Bearer client"}, b'{"query": "{ a }"}', 200),
        ({}, b"{}", 200),
        ({"authorization": "Bearer bad"}, b"{}", 401),
        ({"authorization": "Bearer twice"}, b"{}", 400),
        ({"authorization": "Bearer busy"}, b"{}", 429),
        ({"x-request-id": "client-chosen-id"}, b"{}", 200),
        ({}, b"x" * (LIMIT + 1), 413),
    ],
)
async def test_graphql_is_answered_alike_the_short_and_the_long_way(
    headers: dict[str, str], content: bytes, status: int
) -> None:
    short, long = await both_ways("POST", "/graphql", headers=headers, content=content)

    assert short.status_code == status
    assert _comparable(short) == _comparable(long)
    assert short.headers["x-content-type-options"] == "nosniff"
    if "x-request-id" in headers:
        assert short.headers["x-request-id"] == headers["x-request-id"]


async def test_a_streamed_body_over_the_limit_is_refused_alike() -> None:
    async def chunks() -> Any:
        for _ in range(LIMIT // 50 + 1):
            yield b"y" * 50

    answers = []
    for short_way in (True, False):
        async with client(make_app(short_way=short_way)) as c:
            answers.append(await c.post("/graphql", content=chunks()))
    short, long = answers

    assert short.status_code == 413
    assert _comparable(short) == _comparable(long)


async def test_the_handler_sees_the_id_the_response_carries() -> None:
    async with client(make_app(short_way=True)) as c:
        given = await c.post("/graphql", headers={"x-request-id": "given-id-123"}, content=b"{}")
        fresh = await c.post("/graphql", content=b"{}")

    assert given.json()["requestId"] == given.headers["x-request-id"] == "given-id-123"
    assert fresh.json()["requestId"] == fresh.headers["x-request-id"]


async def test_hsts_is_sent_over_https_only() -> None:
    plain, _ = await both_ways("POST", "/graphql", content=b"{}")
    secure, secure_long = await both_ways("POST", "/graphql", content=b"{}", base_url="https://t")

    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"] == "max-age=60"
    assert _comparable(secure) == _comparable(secure_long)


async def test_a_crash_in_graphql_is_a_json_500_with_the_id_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.http"):
        async with client(make_app(short_way=True)) as c:
            response = await c.post("/graphql?crash", content=b"{}")

    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "secret" not in response.text
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None


async def test_with_cors_a_cross_origin_request_still_passes_the_cors_layer() -> None:
    async with client(make_app(short_way=True, cors=True)) as c:
        cross = await c.post("/graphql", headers={"origin": ORIGIN}, content=b"{}")
        preflight = await c.options(
            "/graphql",
            headers={"origin": ORIGIN, "access-control-request-method": "POST"},
        )
        direct = await c.post("/graphql", content=b"{}")

    assert cross.status_code == 200
    assert cross.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in direct.headers
    assert direct.json()["principal"] == cross.json()["principal"] == "anonymous"


async def test_other_methods_on_graphql_take_the_long_way() -> None:
    short, long = await both_ways("PUT", "/graphql", content=b"{}")

    assert short.status_code == 405
    assert _comparable(short) == _comparable(long)


async def test_graphql_requests_skip_the_layers_the_short_way() -> None:
    endpoint = Echo()
    async with client(make_app(short_way=True, cors=True, graphql=endpoint)) as c:
        await c.post("/graphql", content=b"{}")
        await c.get("/graphql")
        await c.post("/graphql", headers={"origin": ORIGIN}, content=b"{}")

    assert endpoint.routed == [False, False, True]
