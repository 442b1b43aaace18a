"""`make soak`: events under load on two processes, PostgreSQL and Redis Streams.

Two server processes (uvicorn, the app as `python -m app serve` runs it) share a fresh PostgreSQL
database and a Redis stream prefix. `BENCH_SOAK_SUBSCRIBERS` (100) real WebSocket clients, half
on each process, subscribe to `orderCreated` with an admin key (so each should receive every
order), while `createOrder` is sent open-loop at `BENCH_SOAK_RATE` (100) a second for
`BENCH_SOAK_SECONDS` (60), alternating between the processes. Printed: orders placed, closes
with 1013, delivery completeness (every subscriber got every order exactly once), commit-to-
delivery p50/p99 (socket receipt minus the mutation response's arrival), and commit-to-handler
lag p50/p99/max (the order confirmation's `handler_runs.updated_at` minus the event's
`occurred_at`), the dispatcher's own figure.

PostgreSQL from `BENCH_POSTGRES_ADMIN_URL` (postgresql://postgres@127.0.0.1:5432/postgres; a
database `og_soak_<random>` is created and dropped), Redis from `BENCH_REDIS_URL`
(redis://127.0.0.1:6379/0, under a unique prefix that is deleted afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.config import Settings
from app.db import tables
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import SeedSize, seed
from app.usecases import operators as admin
from bench.credentials import admin_api_key
from bench.run import RATE_LIMIT_ENV, SOCKET_LIMITS_ENV
from bench.servers import QUIET, subprocess_server
from resolvers.global_id import to_global_id

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
RATE = float(os.environ.get("BENCH_SOAK_RATE", "100"))
SUBSCRIBERS = int(os.environ.get("BENCH_SOAK_SUBSCRIBERS", "100"))
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SETTLE = 60.0  # seconds to wait for the last deliveries and handlers after the load
CUSTOMERS = 20
ADMIN_EMAIL = "soak-admin@example.com"
CREATE_ORDER = """mutation($p: ID!) {
  createOrder(input: {items: [{productId: $p, quantity: 1}]}) { order { id } errors { code } } }"""
SUBSCRIPTION = "subscription { orderCreated { id } }"


class SoakError(RuntimeError):
    """The soak could not run; the message says why."""


@dataclass
class Subscriber:
    received: dict[str, int] = field(default_factory=dict)  # order id -> times received
    arrivals: dict[str, float] = field(default_factory=dict)
    closes_1013: int = 0
    other_closes: list[int] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


@contextlib.contextmanager
def _database() -> Any:
    name = f"og_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(DatabaseUrl.parse(ADMIN_URL).with_database(name))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _prepare(database_url: str) -> tuple[str, list[str], list[str]]:
    """Seed products and customers; an admin key and customer keys; product IDs."""
    settings = Settings(database_url=database_url)
    db = Database(DatabaseUrl.parse(database_url), settings)
    try:
        await seed(db, SeedSize(products=50, users=CUSTOMERS, orders=0))
        admin_key = await admin_api_key(db, settings, ADMIN_EMAIL, "soak")
        async with db.read() as conn:
            emails = (await conn.execute(select(tables.users.c.email))).scalars().all()
            products = (await conn.execute(select(tables.products.c.id))).scalars().all()
        keys = []
        for email in emails:
            if email == ADMIN_EMAIL:
                continue
            _, key = await admin.create_api_key(
                SqlUnitOfWork.factory(db),
                email=email,
                name="soak",
                scopes="orders:write,orders:read,products:read",
            )
            keys.append(key)
        return admin_key, keys, [to_global_id("Product", p) for p in products]
    finally:
        await db.dispose()


@asynccontextmanager
async def _server(env: dict[str, str]) -> AsyncIterator[str]:
    with (
        tempfile.TemporaryDirectory() as logs,
        subprocess_server(env, Path(logs) / "server.log", uvicorn_args=QUIET, tcp=True) as server,
    ):
        yield server.base_url


async def _subscribe(base_url: str, key: str, state: Subscriber, ready: asyncio.Event) -> None:
    ws_url = base_url.replace("http://", "ws://", 1) + "/graphql"
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        await asyncio.wait_for(ws.recv(), 30)
        payload = {"query": SUBSCRIPTION}
        await ws.send(json.dumps({"type": "subscribe", "id": "o", "payload": payload}))
        ready.set()
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "next":
                    order = message["payload"]["data"]["orderCreated"]["id"]
                    state.received[order] = state.received.get(order, 0) + 1
                    state.arrivals.setdefault(order, time.perf_counter())
                elif message.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            if code == 1013:
                state.closes_1013 += 1
            else:
                state.other_closes.append(code)


async def soak() -> int:
    prefix = f"og-soak-{uuid.uuid4().hex[:8]}:"
    with _database() as database_url:
        migrate(DatabaseUrl.parse(database_url))
        admin_key, keys, products = await _prepare(database_url)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "DEBUG": "false",
            "WS_KEEPALIVE_SECONDS": "30",
            **RATE_LIMIT_ENV,
            **SOCKET_LIMITS_ENV,
        }
        try:
            async with _server(env) as a, _server(env) as b:
                servers = [a, b]
                subscribers = [Subscriber() for _ in range(SUBSCRIBERS)]
                readies = [asyncio.Event() for _ in subscribers]
                tasks = [
                    asyncio.create_task(_subscribe(servers[i % 2], admin_key, s, readies[i]))
                    for i, s in enumerate(subscribers)
                ]
                await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
                committed: dict[str, float] = {}
                failures = 0
                async with httpx.AsyncClient(timeout=30) as client:

                    async def place(n: int) -> None:
                        nonlocal failures
                        try:
                            response = await client.post(
                                f"{servers[n % 2]}/graphql",
                                json={
                                    "query": CREATE_ORDER,
                                    "variables": {"p": products[n % len(products)]},
                                },
                                headers={"Authorization": f"Bearer {keys[n % len(keys)]}"},
                            )
                            order = response.json()["data"]["createOrder"]["order"]
                            committed[order["id"]] = time.perf_counter()
                        except (httpx.HTTPError, KeyError, TypeError, ValueError):
                            failures += 1

                    started = time.perf_counter()
                    placing: list[asyncio.Task[None]] = []
                    total = int(SECONDS * RATE)
                    for n in range(total):
                        delay = started + n / RATE - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        placing.append(asyncio.create_task(place(n)))
                    await asyncio.gather(*placing)
                    achieved = len(committed) / (time.perf_counter() - started)
                deadline = time.monotonic() + SETTLE
                for _ in range(int(SETTLE / 0.5)):  # the last deliveries, bounded
                    if all(set(s.received) >= set(committed) for s in subscribers):
                        break
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                lag = await _handler_lag(database_url, len(committed))
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            redis = Redis.from_url(REDIS_URL)
            await redis.delete(f"{prefix}events")
            await redis.aclose()
    _report(subscribers, committed, failures, achieved, lag)
    return 0


async def _handler_lag(database_url: str, expected: int) -> list[float]:
    """Commit-to-handler lag of every order confirmation, once the dispatcher has run them."""
    db = Database(DatabaseUrl.parse(database_url), Settings(database_url=database_url))
    runs, events = tables.handler_runs, tables.events
    stmt = (
        select(events.c.occurred_at, runs.c.updated_at)
        .join(runs, runs.c.event_id == events.c.id)
        .where(events.c.type == "OrderCreated", runs.c.status == "done")
    )
    try:
        deadline = time.monotonic() + SETTLE
        while True:
            async with db.read() as conn:
                rows = (await conn.execute(stmt)).all()
            if len(rows) >= expected or time.monotonic() > deadline:
                return [(done - occurred).total_seconds() for occurred, done in rows]
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()


def _report(
    subscribers: list[Subscriber],
    committed: dict[str, float],
    failures: int,
    achieved: float,
    lag: list[float],
) -> None:
    orders = set(committed)
    complete = sum(1 for s in subscribers if set(s.received) >= orders)
    duplicates = sum(count - 1 for s in subscribers for count in s.received.values())
    missing = sum(len(orders - set(s.received)) for s in subscribers)
    delivery = [
        s.arrivals[o] - committed[o] for s in subscribers for o in orders if o in s.arrivals
    ]
    print()
    print(
        f"Soak: {SECONDS:g} s of createOrder at {RATE:g}/s on two processes (PostgreSQL, Redis "
        f"Streams), {len(subscribers)} orderCreated subscribers"
    )
    print(f"  orders placed            {len(orders)} ({achieved:.1f}/s), {failures} failed")
    print(f"  1013 closes              {sum(s.closes_1013 for s in subscribers)}")
    others = [code for s in subscribers for code in s.other_closes]
    print(f"  other closes             {len(others)} {sorted(set(others))}")
    print(f"  complete subscribers     {complete}/{len(subscribers)}")
    print(f"  missing / duplicates     {missing} / {duplicates}")
    median = statistics.median(delivery) * 1000 if delivery else 0.0
    print(
        f"  commit-to-delivery       p50 {median:.0f} ms,"
        f" p99 {percentile(delivery, 0.99) * 1000:.0f} ms"
    )
    print(
        f"  commit-to-handler lag    p50 {statistics.median(lag) if lag else 0:.2f} s,"
        f" p99 {percentile(lag, 0.99):.2f} s, max {max(lag, default=0):.2f} s"
        f" ({len(lag)} of {len(orders)} handled)"
    )


def main() -> int:
    return asyncio.run(soak())


if __name__ == "__main__":
    sys.exit(main())
