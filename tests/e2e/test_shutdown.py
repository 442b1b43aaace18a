"""SIGTERM under load: `python -m app serve` stops accepting, answers every request it accepted,
closes WebSockets with 1001 and exits; WORKERS=N processes share one port and one /metrics."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from app.seed import SeedSize
from bench.servers import free_port
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeDb
from tests.e2e.ws_support import TRANSPORT_WS
from tests.events_support import wait_for

SIZE = SeedSize(products=5, users=3, orders=5, max_items_per_order=2)
QUERY = {"query": "query Shelf { products(first: 3) { edges { node { sku } } } }"}
CLIENTS = 8


async def _load(base_url: str, stop: asyncio.Event, results: Counter[str]) -> None:
    """One client sending queries, each on a new connection, until the server refuses it."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        while True:
            try:
                response = await client.post(f"{base_url}/graphql", json=QUERY)
            except httpx.ConnectError:
                results["refused"] += 1  # nothing was sent: a proxy retries elsewhere
                if stop.is_set():
                    return
                continue
            except httpx.HTTPError as error:
                results[f"broken: {type(error).__name__}"] += 1  # reset after sending
                continue
            results["ok" if response.status_code == 200 else f"status {response.status_code}"] += 1


async def _subscribe(ws_url: str, product: str) -> int:
    async with connect(ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription($id: ID!) { productStockChanged(id: $id) { sku } }"
        payload = {"query": query, "variables": {"id": product}}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
        async for _ in ws:  # keepalives, until the server closes the socket
            pass
        assert ws.close_code is not None
        return ws.close_code


async def test_sigterm_under_load_drops_nothing(make_db: MakeDb, tmp_path: Path) -> None:
    db = await make_db("sqlite", "shutdown", SIZE)
    env = {
        "DATABASE_URL": str(db.url),
        "SHUTDOWN_GRACE_SECONDS": "20",
        "LOG_FORMAT": "json",
        # The load is anonymous, from one address: its rate limit is not what is tested here.
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
        "ANONYMOUS_RATE_LIMIT_BURST": "100000",
    }
    with live_server(env, tmp_path / "serve.log", command="serve") as server:
        assert server.process is not None
        async with httpx.AsyncClient() as client:
            found = await client.post(
                f"{server.base_url}/graphql",
                json={"query": "{ products(first: 1) { edges { node { id } } } }"},
            )
        product = found.json()["data"]["products"]["edges"][0]["node"]["id"]
        subscriber = asyncio.create_task(
            _subscribe(server.base_url.replace("http://", "ws://") + "/graphql", product)
        )
        stop = asyncio.Event()
        results: Counter[str] = Counter()
        clients = [
            asyncio.create_task(_load(server.base_url, stop, results)) for _ in range(CLIENTS)
        ]

        async def under_load() -> bool:
            return results["ok"] >= 100

        await wait_for(under_load, "100 answered requests")
        server.process.send_signal(signal.SIGTERM)
        stop.set()
        async with asyncio.timeout(60):
            close_code = await subscriber
            await asyncio.gather(*clients)
        exit_code = await asyncio.to_thread(server.process.wait, 30)
        log = server.log_text()

    assert close_code == 1001, "clients are told to reconnect elsewhere"
    assert set(results) == {"ok", "refused"}, results
    assert results["ok"] >= 100
    # uvicorn ends by re-raising the signal it handled, so the status says "stopped by SIGTERM".
    assert exit_code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete." in log


async def test_workers_share_one_port_and_one_metrics_page(make_db: MakeDb, tmp_path: Path) -> None:
    db = await make_db("sqlite", "workers", SIZE)
    metrics_port = free_port()
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale")  # emptied at start
    env = {
        "DATABASE_URL": str(db.url),
        "WORKERS": "2",
        "METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "ANONYMOUS_RATE_LIMIT_BURST": "1000",
    }
    requests = 40
    with live_server(env, tmp_path / "serve.log", command="serve") as server:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(f"{server.base_url}/graphql", json=QUERY) for _ in range(requests))
            )
            page = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            main_port_metrics = (await client.get(f"{server.base_url}/metrics")).status_code
        pids = {path.stem.rsplit("_", 1)[1] for path in multiproc.glob("*.db")}

    assert all(answer.status_code == 200 for answer in answers)
    assert main_port_metrics == 404, "no token: /metrics only on the metrics port"
    assert "999999" not in pids
    assert len(pids) == 2, f"two workers wrote metrics: {pids}"
    count = next(
        sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
        if sample.name == "og_graphql_operation_duration_seconds_count"
        and sample.labels == {"transport": "http", "operation": "Shelf", "outcome": "ok"}
    )
    assert count == requests, "the page sums every worker"


@pytest.mark.parametrize("value", ["0", "x"])
def test_workers_must_be_a_positive_number(value: str) -> None:
    from app.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="WORKERS"):
        Settings.from_env({"WORKERS": value})
