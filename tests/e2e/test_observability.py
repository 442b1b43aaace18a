"""/metrics (Prometheus text, behind METRICS_TOKEN) and the logs (one JSON object per line, the
access line with request ID, principal, operation, duration and status; email bodies at DEBUG)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from app.auth.ratelimit import CountedRateLimiter, MemoryRateLimiter
from app.config import OperationsSettings, Settings
from app.db.engine import Database
from app.email import ConsoleEmailSender, Email
from app.main import create_app
from app.observability import logs
from app.observability.metrics import OperationNames
from bench.servers import in_process as live_server
from tests.e2e.ws_support import TRANSPORT_WS
from tests.events_support import wait_for

TOKEN = "metrics-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@asynccontextmanager
async def _client(db: Database, **operations: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=str(db.url), operations=OperationsSettings(**operations))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return _samples(response.text)


async def test_metrics_need_the_token_and_count_operations(http_db: Database) -> None:
    async with _client(http_db, metrics_token=TOKEN) as client:
        before = await _scrape(client)
        query = "query Shelf { products(first: 2) { edges { node { sku } } } }"
        for _ in range(3):
            ok = await client.post("/graphql", json={"query": query})
            assert ok.status_code == 200
        await client.post("/graphql", json={"query": "{ nope }"})
        await client.post("/graphql", json={"query": "query Other { __typename }"})
        refused = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        after = await _scrape(client)

    assert refused.status_code == wrong.status_code == 401

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    duration = "og_graphql_operation_duration_seconds_count"
    assert delta(duration, transport="http", operation="Shelf", outcome="ok") == 3
    assert delta(duration, transport="http", operation="anonymous", outcome="refused") == 1
    assert delta(duration, transport="http", operation="Other", outcome="ok") == 1
    assert delta("og_graphql_sql_statements_count", transport="http") == 4  # executed ones
    # One statement for the first Shelf; the response cache may answer the repeats.
    assert 1 <= delta("og_graphql_sql_statements_sum", transport="http") <= 3
    # Each statement waits for the database at least once (PostgreSQL: twice when unprepared).
    assert delta("og_graphql_sql_round_trips_count", transport="http") == 4
    assert delta("og_graphql_sql_round_trips_sum", transport="http") >= delta(
        "og_graphql_sql_statements_sum", transport="http"
    )
    assert 1 <= delta("og_dataloader_batch_size_count", loader="ProductsPageLoader") <= 3
    assert delta("og_http_request_duration_seconds_count", route="/graphql", status="2xx") == 5
    assert delta("og_http_request_duration_seconds_count", route="/metrics", status="4xx") == 2
    # Background loops borrow connections too, so only the gauges' presence is certain here.
    assert ("og_db_pool_connections_in_use", frozenset()) in after
    assert ("og_db_pool_waiting", frozenset()) in after
    assert ("og_outbox_lag_seconds", frozenset()) in after
    assert ("og_relay_delay_seconds_count", frozenset()) in after


async def test_the_pool_gauge_counts_a_borrowed_connection(http_db: Database) -> None:
    from app.observability.metrics import POOL_IN_USE

    async with http_db.read():
        assert POOL_IN_USE._value.get() >= 1, "the connection held here is counted"


async def test_a_checkin_without_a_counted_checkout_leaves_the_gauge(http_db: Database) -> None:
    """SQLAlchemy checks in a connection whose checkout failed (a cancelled pre-ping) without
    having reported its checkout; counting it back in would drift the gauge below zero."""
    from app.observability.metrics import POOL_IN_USE

    class FailedCheckout:
        info: dict[str, object] = {}

    before = POOL_IN_USE._value.get()
    http_db.engine.sync_engine.pool.dispatch.checkin(None, FailedCheckout())
    assert POOL_IN_USE._value.get() == before


async def test_without_a_token_there_is_no_metrics_route(http_db: Database) -> None:
    async with _client(http_db) as client:
        assert (await client.get("/metrics", headers=AUTH)).status_code == 404


async def test_websocket_connections_and_subscriptions_are_gauged(http_db: Database) -> None:
    settings = Settings(
        database_url=str(http_db.url), operations=OperationsSettings(metrics_token=TOKEN)
    )
    app = create_app(settings)
    async with live_server(app, websockets=True) as base, httpx.AsyncClient() as http:

        async def gauges() -> tuple[float, float]:
            text = (await http.get(f"{base}/metrics", headers=AUTH)).text
            samples = _samples(text)
            return (
                _value(samples, "og_websocket_connections"),
                _value(samples, "og_websocket_subscriptions"),
            )

        async def until(expected: tuple[float, float]) -> None:
            async def reached() -> bool:
                return await gauges() == expected

            await wait_for(reached, f"gauges at {expected}")

        idle = await gauges()
        first = {"query": "{ products(first: 1) { edges { node { id } } } }"}
        found = (await http.post(f"{base}/graphql", json=first)).json()
        product = found["data"]["products"]["edges"][0]["node"]["id"]
        url = base.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            subscribe = {
                "query": "subscription($id: ID!) { productStockChanged(id: $id) { sku } }",
                "variables": {"id": product},
            }
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": subscribe}))
            await until((idle[0] + 1, idle[1] + 1))
            before = _samples((await http.get(f"{base}/metrics", headers=AUTH)).text)
            broken = {"query": "query Broken { nope }"}
            await ws.send(json.dumps({"type": "subscribe", "id": "2", "payload": broken}))
            assert json.loads(await ws.recv())["type"] == "error"
            shelf = {"query": "query Shelf { products(first: 1) { totalCount } }"}
            await ws.send(json.dumps({"type": "subscribe", "id": "3", "payload": shelf}))
            assert json.loads(await ws.recv())["type"] == "next"
            after = _samples((await http.get(f"{base}/metrics", headers=AUTH)).text)
        await until(idle)

    def delta(**labels: str) -> float:
        name = "og_graphql_operation_duration_seconds_count"
        return _value(after, name, **labels) - _value(before, name, **labels)

    # Refused before parsing told its name, it counts as the request named it (here: not at all).
    assert delta(transport="websocket", operation="anonymous", outcome="refused") == 1
    assert delta(transport="websocket", operation="Shelf", outcome="ok") == 1


async def test_rate_limit_refusals_are_counted_by_bucket_kind() -> None:
    from app.observability.metrics import RATE_LIMITED

    limiter = CountedRateLimiter(MemoryRateLimiter())
    before = RATE_LIMITED.labels("key")._value.get()
    assert await limiter.acquire("key:1", 60, 1) == 0
    assert await limiter.acquire("key:1", 60, 1) > 0
    await limiter.refund("key:1", 60, 1)
    assert RATE_LIMITED.labels("key")._value.get() - before == 1


def test_operation_names_are_bounded() -> None:
    names = OperationNames(limit=2)
    assert [names.label(n) for n in ("A", "B", "C", "A", None, "not a name!")] == [
        "A",
        "B",
        "other",
        "A",
        "anonymous",
        "other",
    ]


@contextmanager
def _json_logs(level: str = "INFO") -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("json", level, stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_access_line_is_one_json_object_with_the_request_facts(
    http_db: Database,
) -> None:
    with _json_logs() as stream:
        async with _client(http_db) as client:
            response = await client.post(
                "/graphql",
                json={"query": "query Count { products(first: 0) { totalCount } }"},
                headers={"x-request-id": "access-line-0001"},
            )
    assert response.status_code == 200
    access = [line for line in _lines(stream) if line["logger"] == "app.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "access-line-0001"
    assert line["level"] == "INFO"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)
    assert line["principal"] == "anonymous"
    assert line["operation"] == "Count"
    assert line["client"] == "203.0.113.9"
    assert line["duration_ms"] > 0
    assert "time" in line


async def test_email_bodies_are_logged_only_at_debug() -> None:
    email = Email("a@example.com", "Your order", "line one\nsecret line two", "<m@example>")
    with _json_logs("INFO") as info:
        await ConsoleEmailSender().send(email)
    with _json_logs("DEBUG") as debug:
        await ConsoleEmailSender().send(email)
    assert "secret line two" not in info.getvalue()
    assert [line["message"] for line in _lines(info)] == [
        "email to a@example.com: Your order (body at DEBUG)"
    ]
    assert any("secret line two" in line["message"] for line in _lines(debug))


@pytest.mark.parametrize(("env", "expected"), [({}, "text"), ({"APP_ENV": "staging"}, "json")])
def test_log_format_defaults(env: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env).operations.log_format == expected
