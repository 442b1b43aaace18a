"""One operation pipeline: the same request gives the same answer over HTTP and both WebSocket
protocols (real uvicorn, real clients)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import GraphQLLimits
from app.db.engine import Database
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.e2e.ws_support import LEGACY_WS, TRANSPORT_WS, Server, ready_socket, serving

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("{ products(first: 2) {", {}),  # parse error
    ("{ nope }", {}),  # validation
    ("query A { me { id } } query B { me { id } }", {}),  # which operation?
    ("query P($n: Int) { products(first: $n) { totalCount } }", {"n": "two"}),  # variables
    ("{ " + " ".join(f"f{n}: __typename" for n in range(21)) + " }", {}),  # limits
    ("{ orders(first: 1) { totalCount } }", {}),  # runs: UNAUTHENTICATED field error
    (
        "query P($n: Int) { products(first: $n) { edges { node { name sku } } } }",
        {"n": 2},
    ),  # runs
]


@pytest.fixture(scope="module")
async def pipeline_db(make_db: MakeDb) -> Database:
    return await make_db("sqlite", "pipeline", SMALL)


@pytest.fixture
async def server(pipeline_db: Database) -> AsyncIterator[Server]:
    async with serving(pipeline_db) as served:
        yield served


async def _over_http(server: Server, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"accept": "application/json"},
        )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_http_and_websocket_give_the_same_answers(server: Server, protocol: str) -> None:
    async with ready_socket(server, protocol) as client:
        for index, (query, variables) in enumerate(REQUESTS):
            expected = await _over_http(server, query, variables)
            await client.start(str(index), query, variables)
            message = await client.receive()
            assert message["id"] == str(index)
            if "data" not in expected:
                assert message["type"] == "error", (query, message)
                # The legacy protocol's `error` carries one error.
                errors = message["payload"]
                assert (errors if protocol == TRANSPORT_WS else [errors]) == expected["errors"][
                    : 1 if protocol == LEGACY_WS else None
                ]
            else:
                assert message["type"] in ("next", "data"), (query, message)
                assert message["payload"] == expected, query
                assert (await client.receive())["type"] == "complete"


async def test_too_busy_is_the_same_message_over_http_and_websocket(
    pipeline_db: Database,
) -> None:
    limits = GraphQLLimits(max_concurrent_operations=1, execution_timeout=0.05)
    async with serving(pipeline_db, graphql=limits) as server:
        pipeline = server.state.pipeline
        await pipeline.operations.acquire()  # every turn is taken
        try:
            over_http = await _over_http(server, "{ products(first: 1) { totalCount } }", {})
            async with ready_socket(server) as client:
                await client.start("busy", "{ products(first: 1) { totalCount } }")
                over_socket = await client.result("busy")
        finally:
            pipeline.operations.release()

    assert over_http == over_socket
    assert over_http["data"] is None
    assert over_http["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert over_http["errors"][0]["message"].startswith("The server is too busy")
