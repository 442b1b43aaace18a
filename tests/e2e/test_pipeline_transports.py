"""One operation pipeline: the same request gives the same answer over HTTP and both WebSocket
protocols (real uvicorn, real clients)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import BudgetSettings, GraphQLLimits
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


def _settled(body: dict[str, Any]) -> dict[str, Any]:
    """The answer without what the budget holds right now (it refills between requests)."""
    status = body.get("extensions", {}).get("cost", {}).get("throttleStatus")
    if status is not None:
        status.pop("currentlyAvailable")
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
                assert _settled(message["payload"]) == _settled(expected), query
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

    assert _settled(over_http) == _settled(over_socket)
    assert over_http["data"] is None
    assert over_http["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert over_http["errors"][0]["message"].startswith("The server is too busy")


async def test_websocket_operations_pass_the_same_cost_and_budget_checks(
    pipeline_db: Database,
) -> None:
    budget = BudgetSettings(maximum=30, restore_rate=0.01)
    async with (
        serving(pipeline_db, budget=budget) as server,
        ready_socket(server) as client,
    ):
        await client.start("big", "{ products(first: 31) { edges { node { sku } } } }")
        too_big = await client.receive()
        await client.start("ok", "{ products(first: 30) { edges { node { sku } } } }")
        ok = await client.result("ok")
        assert (await client.receive())["type"] == "complete"
        await client.start("broke", "{ products(first: 30) { edges { node { sku } } } }")
        broke = await client.receive()

    # 31 can never fit a bucket of 30; 30 fits, costs 5 (SMALL's products), 25 are left.
    assert too_big["type"] == "error"
    assert too_big["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert ok["extensions"]["cost"]["actualQueryCost"] == 5
    assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 25
    assert broke["type"] == "error"
    assert broke["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert broke["payload"][0]["extensions"]["retryAfter"] >= 500
