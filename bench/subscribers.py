"""`make bench`, subscriber part: commit-to-delivery latency and server CPU per delivered event for
1, 100, 1,000 and 10,000 WebSocket clients, and the replay of 10,000 missed events.

One real server process (uvicorn, the app as `python -m app serve` runs it, on a SQLite file, with
its in-process broker, or Redis Streams when `BENCH_REDIS_URL` is set, under a unique prefix) and
real WebSocket clients (`graphql-transport-ws`, each on its own socket and anonymous), held by
BENCH_CLIENT_PROCESSES (2) client processes (bench.subscriber_clients: so cheap per message that
reading 10,000 sockets never queues behind the client's own CPU), all subscribed to
`productStockChanged(id:)` for one product. Events are
committed one at a time by `restockProduct` over HTTP with an admin API key. Latency = the moment
(wall clock) a client's socket hands it the `next` message minus the event's `occurred_at` in
the store (taken just before the commit, on the same machine's clock; the event is matched by
`extensions.event.version`). The mutation's HTTP response often arrives after the event.
Each group is measured on its own: its sockets are opened, proven to be receiving (warm-up
restocks until every socket has seen one, and the last of them delivered everywhere), held for
all of its events, then closed. Groups of
10,000 run twice: 1,000 distinct documents with 10 identical subscribers each (the server shares
one execution per document and audience), and 10,000 distinct documents (each subscriber its own
alias). Server CPU per delivery = the server process's CPU time over the measured events divided
by the deliveries. Replay: a client takes one event, leaves, 10,000 stock changes are committed
(straight into the store), and the time from resubscribing with `after` to the last of them is
measured. `BENCH_SUBSCRIBER_MAX` caps the group sizes (default 10,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from app.config import Settings
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.domain.events import EventType, StreamType, new_event
from app.repositories import events as store
from app.repositories.unit_of_work import SqlUnitOfWork
from bench.credentials import admin_api_key
from bench.run import RATE_LIMIT_ENV, SOCKET_LIMITS_ENV, process_cpu_seconds
from bench.servers import QUIET, subprocess_server
from resolvers.global_id import from_global_id

# (label, sockets, distinct documents)
GROUPS = (
    ("1", 1, 1),
    ("100", 100, 1),
    ("1,000", 1000, 1),
    ("10,000 (1,000 docs x 10)", 10_000, 1000),
    ("10,000 distinct", 10_000, 10_000),
)
MAX_GROUP = int(os.environ.get("BENCH_SUBSCRIBER_MAX", "10000"))
EVENTS = int(os.environ.get("BENCH_SUBSCRIBER_EVENTS", "100"))
REPLAY_EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "10000"))
DELIVERIES_PER_GROUP = 200_000  # events x sockets a group is measured for, at most
WAIT = 30.0  # seconds before the bench gives up on a delivery (a hang, not a figure)
CONNECT_AT_ONCE = 100  # handshakes in flight while a group's sockets open
# Processes holding the sockets (bench.subscriber_clients), so that reading 10,000 sockets does
# not queue behind one client process's CPU.
CLIENT_PROCESSES = int(os.environ.get("BENCH_CLIENT_PROCESSES", "2"))
ADMIN_EMAIL = "bench-admin@example.com"
SUBSCRIPTION = "subscription($id: ID!) { %s: productStockChanged(id: $id) { stock } }"
RESUME = """subscription($id: ID!, $after: String) {
  productStockChanged(id: $id, after: $after) { stock } }"""
CREATE = """mutation($input: CreateProductInput!) {
  createProduct(input: $input) { product { id } errors { message } } }"""
RESTOCK = "mutation($id: ID!) { restockProduct(id: $id, quantity: 1) { product { stock } } }"


# What `python -m app serve` sets for WebSockets beyond uvicorn's defaults (uvicorn_options).
SERVE_WS = ("--ws-per-message-deflate", "false")


class BenchError(RuntimeError):
    """The subscriber bench could not run; the message says why."""


@dataclass
class Row:
    subscribers: int
    p50_ms: float
    p99_ms: float
    samples: int
    label: str = ""
    cpu_us_per_delivery: float = 0.0


def summarize(subscribers: int, latencies: list[float]) -> Row:
    """p50 (median) and p99 (nearest rank) of latencies in seconds, as milliseconds."""
    if not latencies:
        raise BenchError(f"no deliveries measured for {subscribers} subscribers")
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Row(subscribers, statistics.median(ordered) * 1000, p99 * 1000, len(ordered))


@dataclass
class Replay:
    events: int
    seconds: float
    server_cpu_seconds: float = 0.0


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
        return await admin_api_key(db, settings, ADMIN_EMAIL, "bench")
    finally:
        await db.dispose()


@asynccontextmanager
async def _server(
    database_url: str, redis_url: str | None, prefix: str
) -> AsyncIterator[tuple[str, int]]:
    env = {
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        **RATE_LIMIT_ENV,
        **SOCKET_LIMITS_ENV,
        # Each socket holds one operation; the queue bound is the server's own default.
        "WS_KEEPALIVE_SECONDS": "30",
        "REDIS_URL": redis_url or "",
        "REDIS_PREFIX": prefix,
    }
    with (
        tempfile.TemporaryDirectory() as logs,
        subprocess_server(
            env, Path(logs) / "server.log", uvicorn_args=(*QUIET, *SERVE_WS), tcp=True
        ) as server,
    ):
        yield server.base_url, server.pid


async def _post(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchError(f"HTTP {response.status_code}: {json.dumps(body)[:500]}")
    return body


async def measure(redis_url: str | None) -> tuple[list[Row], Replay | None]:
    prefix = f"og-bench-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'subscribers.sqlite3'}"
        migrate(DatabaseUrl.parse(database_url))
        key = await _admin_key(database_url)
        try:
            async with _server(database_url, redis_url, prefix) as (base_url, pid):
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
                    product_id = made["product"]["id"]
                    clients = _Clients(CLIENT_PROCESSES)
                    await clients.start()
                    try:
                        rows = [
                            await _group(
                                client,
                                clients,
                                database_url,
                                ws_url,
                                product_id,
                                pid,
                                label,
                                size,
                                documents,
                            )
                            for label, size, documents in GROUPS
                            if size <= MAX_GROUP
                        ]
                    finally:
                        await clients.stop()
                    replay = None
                    if REPLAY_EVENTS:
                        replay = await _replay(client, ws_url, product_id, database_url, pid)
                    return rows, replay
        finally:
            if redis_url:
                redis = Redis.from_url(redis_url)
                await redis.delete(f"{prefix}events")
                await redis.aclose()


class _Clients:
    """The client processes (bench.subscriber_clients) holding a group's sockets: what each has
    said, and when every one has received an event."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._processes: list[asyncio.subprocess.Process] = []
        self._readers: list[asyncio.Task[None]] = []
        self._replies: list[asyncio.Queue[dict[str, Any]]] = []
        self._seen: set[int] = set()  # client processes all of whose sockets received something
        self._done: dict[int, set[int]] = {}  # version -> client processes done with it
        self._involved = 0
        self._changed = asyncio.Event()
        self.failure: str | None = None

    async def start(self) -> None:
        for n in range(self.count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.subscriber_clients",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 26,
            )
            self._processes.append(process)
            self._replies.append(asyncio.Queue())
            self._readers.append(asyncio.create_task(self._listen(n, process)))

    async def stop(self) -> None:
        for process in self._processes:
            with contextlib.suppress(ConnectionError):
                self._tell(process, op="exit")
        for process in self._processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    def _tell(self, process: asyncio.subprocess.Process, **command: Any) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(command).encode() + b"\n")

    async def _listen(self, n: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            message = json.loads(line)
            op = message["op"]
            if op == "seen":
                self._seen.add(n)
            elif op == "done":
                self._done.setdefault(int(message["version"]), set()).add(n)
            elif op == "failed":
                self.failure = message["message"]
            else:
                await self._replies[n].put(message)
            self._changed.set()
        if self.failure is None:
            self.failure = f"client process {n} exited"
        self._changed.set()

    async def _reply(self, n: int) -> dict[str, Any]:
        while True:
            if self.failure is not None:
                raise BenchError(self.failure)
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self._replies[n].get(), 0.5)

    async def open(self, ws_url: str, product_id: str, size: int, documents: int) -> None:
        """Open `size` sockets over the processes (socket i asks document i % documents) and
        wait until each has subscribed."""
        self._seen.clear()
        self._done.clear()
        self._involved = min(self.count, size)
        share = -(-size // self._involved)
        for n in range(self._involved):
            self._tell(
                self._processes[n],
                op="open",
                url=ws_url,
                query=SUBSCRIPTION,
                variables={"id": product_id},
                indexes=[n * share, min(size, (n + 1) * share)],
                documents=documents,
                at_once=max(1, CONNECT_AT_ONCE // self._involved),
            )
        for n in range(self._involved):
            await self._reply(n)

    @property
    def all_seen(self) -> bool:
        return len(self._seen) == self._involved

    async def _until(self, done: Callable[[], bool], seconds: float) -> bool:
        """Wait (at most `seconds`) until `done()`; whether it is."""
        deadline = time.monotonic() + seconds
        while not done():
            if self.failure is not None:
                raise BenchError(self.failure)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True

    async def seen(self, seconds: float) -> bool:
        """Whether every socket has received an event, waiting at most `seconds`."""
        return await self._until(lambda: self.all_seen, seconds)

    async def delivered(self, version: int, seconds: float = WAIT) -> None:
        """Until every socket has received `version` (BenchError after `seconds`)."""
        if not await self._until(
            lambda: len(self._done.get(version, ())) == self._involved, seconds
        ):
            raise BenchError(f"event {version} did not reach every socket in {seconds} s")

    async def close(self) -> dict[int, list[float]]:
        """When each socket received each event; the sockets are closed."""
        times: dict[int, list[float]] = {}
        for n in range(self._involved):
            self._tell(self._processes[n], op="report")
        for n in range(self._involved):
            for version, received in (await self._reply(n))["times"].items():
                times.setdefault(int(version), []).extend(received)
        return times


async def _group(
    client: httpx.AsyncClient,
    clients: _Clients,
    database_url: str,
    ws_url: str,
    product_id: str,
    pid: int,
    label: str,
    size: int,
    documents: int,
) -> Row:
    events = max(5, min(EVENTS, DELIVERIES_PER_GROUP // size))
    await clients.open(ws_url, product_id, size, documents)
    latencies: list[float] = []
    try:
        # Warm-up: the server sets a subscription up after `subscribe` arrives; restock until
        # every socket has received something, so no measured event meets a socket not yet there.
        deadline = time.monotonic() + WAIT
        while not clients.all_seen:
            if time.monotonic() > deadline:
                raise BenchError(f"not all of {size} sockets received events")
            await _post(client, RESTOCK, id=product_id)
            await clients.seen(1.0)
        # Every warm-up restock has committed: the measured ones are the next versions, once
        # the last warm-up event has reached every socket (none queues behind warm-up events).
        first = version = await _last_version(database_url, product_id)
        await clients.delivered(first, 4 * WAIT)
        cpu_before = process_cpu_seconds(pid)
        for _ in range(events):
            version += 1
            await _post(client, RESTOCK, id=product_id)
            await clients.delivered(version)
        cpu = process_cpu_seconds(pid) - cpu_before
    finally:
        times = await clients.close()
    occurred = await _occurred_at(database_url, product_id)
    for measured in range(first + 1, version + 1):
        latencies.extend(t - occurred[measured] for t in times[measured])
    row = summarize(size, latencies)
    row.label = label
    row.cpu_us_per_delivery = cpu / len(latencies) * 1e6
    _print_row(row)  # as it is measured: a later group's failure keeps the earlier figures
    return row


async def _replay(
    client: httpx.AsyncClient, ws_url: str, product_id: str, database_url: str, pid: int
) -> Replay:
    """A client leaves with its cursor, REPLAY_EVENTS changes are committed, it comes back."""
    ws = await connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await asyncio.wait_for(ws.recv(), WAIT)
    payload = {"query": RESUME, "variables": {"id": product_id}}
    await ws.send(json.dumps({"type": "subscribe", "id": "r", "payload": payload}))
    cursor: str | None = None
    deadline = time.monotonic() + WAIT
    while cursor is None:
        if time.monotonic() > deadline:
            raise BenchError("the replay client received nothing")
        await _post(client, RESTOCK, id=product_id)
        with contextlib.suppress(TimeoutError):
            message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            if message.get("type") == "next":
                cursor = message["payload"]["extensions"]["cursor"]
    await ws.close()
    await commit_stock_changes(database_url, product_id, REPLAY_EVENTS)
    ws = await connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")])
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await asyncio.wait_for(ws.recv(), WAIT)
        payload = {"query": RESUME, "variables": {"id": product_id, "after": cursor}}
        cpu_before = process_cpu_seconds(pid)
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "subscribe", "id": "r", "payload": payload}))
        received = 0
        while received < REPLAY_EVENTS:
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            if message.get("type") == "next":
                received += 1
            elif message.get("type") != "ping":
                raise BenchError(f"replay: {message}")
        seconds = time.perf_counter() - started
        return Replay(received, seconds, process_cpu_seconds(pid) - cpu_before)
    finally:
        await ws.close()


async def _last_version(database_url: str, product_id: str) -> int:
    """The product's stream version now (its last event's)."""
    db = Database(DatabaseUrl.parse(database_url), Settings(database_url=database_url))
    _, pk = from_global_id(product_id)
    try:
        async with SqlUnitOfWork(db) as uow:
            return await uow.events.last_version(pk)
    finally:
        await db.dispose()


async def _occurred_at(database_url: str, product_id: str) -> dict[int, float]:
    """When each of the product's events happened (its commit, within a transaction's time), by
    stream version, as a Unix time."""
    db = Database(DatabaseUrl.parse(database_url), Settings(database_url=database_url))
    _, pk = from_global_id(product_id)
    try:
        async with db.read() as conn:
            found = await store.by_stream_ids(conn, [pk])
        return {e.version: e.occurred_at.timestamp() for e in found.get(pk, [])}
    finally:
        await db.dispose()


async def commit_stock_changes(database_url: str, product_id: str, count: int) -> None:
    """Commit `count` stock changes of the product straight into the store (a mutation each
    would take minutes), then wait until the server's relay has numbered them all."""
    settings = Settings(database_url=database_url)
    db = Database(DatabaseUrl.parse(database_url), settings)
    _, pk = from_global_id(product_id)
    try:
        async with SqlUnitOfWork(db) as uow:
            version = await uow.events.last_version(pk)
            now = datetime.now(UTC)
            for n in range(1, count + 1):
                await uow.record(
                    new_event(
                        EventType.PRODUCT_STOCK_CHANGED,
                        StreamType.PRODUCT,
                        pk,
                        version + n,
                        {"stock": version + n},
                        now,
                    )
                )
        deadline = time.monotonic() + 120
        while True:
            async with db.read() as conn:
                if await store.unpublished_count(conn) == 0:
                    return
            if time.monotonic() > deadline:
                raise BenchError("the server's relay did not publish the replay events")
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def _print_row(row: Row) -> None:
    print(
        f"{row.label:>26} {row.p50_ms:>9.2f} {row.p99_ms:>9.2f} {row.samples:>11}"
        f" {row.cpu_us_per_delivery:>13.1f}",
        flush=True,
    )


def main() -> int:
    redis_url = os.environ.get("BENCH_REDIS_URL") or None
    broker_name = "redis-streams" if redis_url else "in-process"
    largest = max(size for _, size, _ in GROUPS if size <= MAX_GROUP)
    limit = raise_fd_limit(largest * 2 + 256)  # each socket: a client fd and a server fd
    print()
    print(f"Subscribers: commit-to-delivery latency, WebSocket clients ({broker_name} broker)")
    print(
        "(real graphql-transport-ws sockets to one uvicorn process; productStockChanged; one "
        f"restockProduct at a time; SQLite; {EVENTS} events a group; RLIMIT_NOFILE {limit})"
    )
    print(
        f"{'subscribers':>26} {'p50 ms':>9} {'p99 ms':>9} {'deliveries':>11} {'CPU us/deliv':>13}"
    )
    _, replay = asyncio.run(measure(redis_url))
    if replay is not None:
        print(
            f"Replay of {replay.events} missed events after a cursor: {replay.seconds:.2f} s"
            f" (server CPU {replay.server_cpu_seconds:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
