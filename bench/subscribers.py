"""`make bench`, subscriber part: commit-to-delivery latency for 1, 100 and 1,000 WebSocket clients.

One real server process (uvicorn, the app as `python -m app serve` runs it, on a SQLite file, with
its in-process broker, or Redis Streams when `BENCH_REDIS_URL` is set, under a unique prefix) and
real WebSocket clients in this process (`websockets`, `graphql-transport-ws`), each on its own
socket and anonymous, all subscribed to `productStockChanged(id:)` for one product. Events are
committed one at a time by `restockProduct` over HTTP with an admin API key. Latency = the moment
a client's socket hands it the `next` message minus the moment the mutation's HTTP response
arrived (the commit happened before the response was sent, so this slightly under-counts).
Each group is measured on its own: its sockets are opened, proven to be receiving (warm-up
restocks until every socket has seen one), held for all of its events, then closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.auth.passwords import Passwords
from app.auth.scopes import ALL_SCOPES
from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.unit_of_work import SqlUnitOfWork
from app.usecases import operators as admin
from bench.run import RATE_LIMIT_ENV, SERVER_COMMAND, free_port

GROUPS = (1, 100, 1000)
EVENTS = int(os.environ.get("BENCH_SUBSCRIBER_EVENTS", "100"))
WAIT = 30.0  # seconds before the bench gives up on a delivery (a hang, not a figure)
CONNECT_AT_ONCE = 100  # handshakes in flight while a group's sockets open
ADMIN_EMAIL = "bench-admin@example.com"
SUBSCRIPTION = "subscription($id: ID!) { productStockChanged(id: $id) { stock } }"
CREATE = """mutation($input: CreateProductInput!) {
  createProduct(input: $input) { product { id } errors { message } } }"""
RESTOCK = "mutation($id: ID!) { restockProduct(id: $id, quantity: 1) { product { stock } } }"


class BenchError(RuntimeError):
    """The subscriber bench could not run; the message says why."""


@dataclass
class Row:
    subscribers: int
    p50_ms: float
    p99_ms: float
    samples: int


def summarize(subscribers: int, latencies: list[float]) -> Row:
    """p50 (median) and p99 (nearest rank) of latencies in seconds, as milliseconds."""
    if not latencies:
        raise BenchError(f"no deliveries measured for {subscribers} subscribers")
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Row(subscribers, statistics.median(ordered) * 1000, p99 * 1000, len(ordered))


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `needed` (never past the hard limit); the
    server started afterwards inherits it. The limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def _admin_key(database_url: str) -> str:
    settings = Settings(database_url=database_url)
    db = Database(DatabaseUrl.parse(database_url), settings)
    try:
        await admin.create_user(
            SqlUnitOfWork.factory(db),
            Passwords(settings.auth),
            email=ADMIN_EMAIL,
            password="Bench-" + uuid.uuid4().hex,
            admin=True,
        )
        _, plaintext = await admin.create_api_key(
            SqlUnitOfWork.factory(db),
            email=ADMIN_EMAIL,
            name="bench",
            scopes=",".join(sorted(ALL_SCOPES)),
        )
        return plaintext
    finally:
        await db.dispose()


@asynccontextmanager
async def _server(database_url: str, redis_url: str | None, prefix: str) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        **RATE_LIMIT_ENV,
        # Each socket holds one operation; the queue bound is the server's own default.
        "WS_KEEPALIVE_SECONDS": "30",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["REDIS_PREFIX"] = prefix
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *SERVER_COMMAND,
            "--port",
            str(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(300):
                    if process.returncode is not None:
                        log.seek(0)
                        raise BenchError(f"the server exited: {log.read()[-2000:].decode()}")
                    try:
                        if (await client.get(f"{url}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise BenchError("the server did not answer /healthz within 30 s")
            yield url
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _post(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchError(f"HTTP {response.status_code}: {json.dumps(body)[:500]}")
    return body


async def measure(redis_url: str | None) -> list[Row]:
    prefix = f"og-bench-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'subscribers.sqlite3'}"
        migrate(DatabaseUrl.parse(database_url))
        key = await _admin_key(database_url)
        try:
            async with _server(database_url, redis_url, prefix) as base_url:
                headers = {"authorization": f"Bearer {key}"}
                async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
                    product = {
                        "sku": "BENCH-1",
                        "name": "Bench product",
                        "price": {"amount": "1.00", "currency": "USD"},
                        "stock": 0,
                    }
                    made = (await _post(client, CREATE, input=product))["data"]["createProduct"]
                    if made["product"] is None:
                        raise BenchError(f"createProduct: {made['errors']}")
                    ws_url = base_url.replace("http://", "ws://", 1) + "/graphql"
                    return [
                        await _group(client, ws_url, made["product"]["id"], size) for size in GROUPS
                    ]
        finally:
            if redis_url:
                redis = Redis.from_url(redis_url)
                await redis.delete(f"{prefix}events")
                await redis.aclose()


class _Arrivals:
    """Per stock value, when each socket received it; wakes the bench when all have."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.times: dict[int, list[float]] = {}
        self.seen: set[int] = set()  # sockets (by index) that received anything
        self.complete = asyncio.Event()

    def record(self, index: int, stock: int) -> None:
        received = self.times.setdefault(stock, [])
        received.append(time.perf_counter())
        self.seen.add(index)
        if len(received) == self.size:
            self.complete.set()


async def _open(ws_url: str, product_id: str) -> ClientConnection:
    ws = await connect(
        ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=WAIT
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    if ack.get("type") != "connection_ack":
        raise BenchError(f"connection_init answered {ack}")
    payload = {"query": SUBSCRIPTION, "variables": {"id": product_id}}
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
    return ws


async def _read(ws: ClientConnection, index: int, arrivals: _Arrivals) -> None:
    try:
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "next":
                stock = message["payload"]["data"]["productStockChanged"]["stock"]
                arrivals.record(index, int(stock))
            elif kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind in ("error", "complete"):
                raise BenchError(f"subscription ended: {message}")
    except ConnectionClosed:
        pass


async def _group(client: httpx.AsyncClient, ws_url: str, product_id: str, size: int) -> Row:
    arrivals = _Arrivals(size)
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def opened() -> ClientConnection:
        async with gate:
            return await _open(ws_url, product_id)

    sockets = await asyncio.gather(*(opened() for _ in range(size)))
    readers = [asyncio.create_task(_read(ws, i, arrivals)) for i, ws in enumerate(sockets)]
    latencies: list[float] = []
    try:
        # Warm-up: the server sets a subscription up after `subscribe` arrives; restock until
        # every socket has received something, so no measured event meets a socket not yet there.
        deadline = time.monotonic() + WAIT
        while len(arrivals.seen) < size:
            if time.monotonic() > deadline:
                raise BenchError(f"{len(arrivals.seen)} of {size} sockets received events")
            await _post(client, RESTOCK, id=product_id)
            await asyncio.sleep(0.2)
        for _ in range(EVENTS):
            arrivals.complete.clear()
            body = await _post(client, RESTOCK, id=product_id)
            committed_at = time.perf_counter()
            stock = int(body["data"]["restockProduct"]["product"]["stock"])
            if len(arrivals.times.get(stock, ())) < size:
                await asyncio.wait_for(arrivals.complete.wait(), WAIT)
            latencies.extend(t - committed_at for t in arrivals.times.pop(stock))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
    return summarize(size, latencies)


def main() -> int:
    redis_url = os.environ.get("BENCH_REDIS_URL") or None
    broker_name = "redis-streams" if redis_url else "in-process"
    limit = raise_fd_limit(max(GROUPS) * 2 + 256)  # each socket: a client fd and a server fd
    print()
    print(f"Subscribers: commit-to-delivery latency, WebSocket clients ({broker_name} broker)")
    print(
        "(real graphql-transport-ws sockets to one uvicorn process; productStockChanged; one "
        f"restockProduct at a time; SQLite; {EVENTS} events a group; RLIMIT_NOFILE {limit})"
    )
    rows = asyncio.run(measure(redis_url))
    print(f"{'subscribers':>12} {'p50 ms':>9} {'p99 ms':>9} {'deliveries':>11}")
    for row in rows:
        print(f"{row.subscribers:>12} {row.p50_ms:>9.2f} {row.p99_ms:>9.2f} {row.samples:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
