"""`make soak`: events under load on two processes, PostgreSQL and Redis Streams.

Two server processes (uvicorn, the app as `python -m app serve` runs it) share a fresh PostgreSQL
database and a Redis stream prefix. `BENCH_SOAK_SUBSCRIBERS` (100) real WebSocket clients, half
on each server and run by `BENCH_SOAK_CLIENT_PROCESSES` (2) processes of their own, subscribe to
`orderCreated` with an admin key (so each should receive every order), while `createOrder` is
sent open-loop at `BENCH_SOAK_RATE` (100) a second for `BENCH_SOAK_SECONDS` (60), alternating
between the servers. Printed: orders placed (failures by reason), closes with 1013, delivery
completeness (every subscriber got every order exactly once), commit-to-delivery p50/p99
(socket receipt minus the mutation response's arrival), commit-to-handler lag p50/p99/max (the
order confirmation's `handler_runs.updated_at` minus the event's `occurred_at`), each server's
CPU, the order placer's CPU and loop lag, and the SQL statements per order (pg_stat_statements,
when the server loads it). Then one PASS/FAIL line per target of issue #14 (every order placed
at the rate, no 1013 close, every subscriber gets every order exactly once, every order handled,
handler lag p99 <= 2 s); the exit status is 1 on any FAIL.

The servers run in their own process groups and are stopped (with the database dropped and the
Redis prefix deleted) however the soak ends: normally, on an exception, on Ctrl-C or on SIGTERM.

PostgreSQL from `BENCH_POSTGRES_ADMIN_URL` (postgresql://postgres@127.0.0.1:5432/postgres; a
database `og_soak_<random>` is created and dropped), Redis from `BENCH_REDIS_URL`
(redis://127.0.0.1:6379/0, under a unique prefix that is deleted afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.auth.principal import OPERATOR
from app.config import Settings
from app.db import tables
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.domain.products import MAX_RESTOCK
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import SeedSize, seed
from app.usecases import operators as admin
from app.usecases.products import restock_product
from bench.credentials import admin_api_key
from bench.run import RATE_LIMIT_ENV, SOCKET_LIMITS_ENV, process_cpu_seconds
from bench.servers import QUIET, ServerProcess, subprocess_server
from resolvers.global_id import to_global_id

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
RATE = float(os.environ.get("BENCH_SOAK_RATE", "100"))
SUBSCRIBERS = int(os.environ.get("BENCH_SOAK_SUBSCRIBERS", "100"))
PLACER_CONNECTIONS = 64
CLIENT_PROCESSES = max(1, int(os.environ.get("BENCH_SOAK_CLIENT_PROCESSES", "2")))
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LAG_P99_TARGET = 2.0  # seconds, issue #14
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
    ended: bool = False  # the socket closed before the soak ended it


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


@contextlib.contextmanager
def _database() -> Any:
    name = f"og_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with contextlib.suppress(psycopg.Error):  # statement counts, where the server loads it
        url = str(DatabaseUrl.parse(ADMIN_URL).with_database(name))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
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
        for product in products:  # seeded stock is random, down to 0: no order may run out
            await restock_product(SqlUnitOfWork.factory(db), OPERATOR, product, MAX_RESTOCK)
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
async def _server(env: dict[str, str], log: Path) -> AsyncIterator[ServerProcess]:
    with subprocess_server(env, log, uvicorn_args=QUIET, tcp=True) as server:
        yield server


def _log_trouble(logs: list[Path]) -> Counter[str]:
    """The servers' warnings and errors (LOG_FORMAT=text), by level and message with its
    numbers masked, so a miss comes with what the servers said about it."""
    said: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            parts = line.split(" ", 4)  # date, time, level, logger, [request] message
            if len(parts) == 5 and parts[2] in ("WARNING", "ERROR", "CRITICAL"):
                message = parts[4].split("] ", 1)[-1]
                said[f"{parts[2]} {parts[3]}: {_masked(message)}"] += 1
    return said


def _masked(message: str) -> str:
    return "".join("#" if c.isdigit() else c for c in message)[:140]


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
        finally:
            state.ended = True


def _clients(urls: list[str], key: str, count: int, orders: Connection) -> None:
    """A subscriber process: `count` subscribers, spread over `urls`; says "ready" once all
    have subscribed, then, given the orders placed, waits (up to SETTLE) until each has every
    one or has lost its socket, and sends back what each received."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the soak stops its clients itself

    async def run() -> list[Subscriber]:
        subscribers = [Subscriber() for _ in range(count)]
        readies = [asyncio.Event() for _ in subscribers]
        tasks = [
            asyncio.create_task(_subscribe(urls[i % len(urls)], key, state, readies[i]))
            for i, state in enumerate(subscribers)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
            orders.send("ready")
            placed: set[str] = await asyncio.get_running_loop().run_in_executor(None, orders.recv)
            await _settle(subscribers, placed)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return subscribers

    try:
        orders.send(asyncio.run(run()))
    except Exception as error:  # the soak reports it rather than waiting out its timeout
        orders.send(f"subscribers failed: {error!r}")


@contextlib.contextmanager
def _subscriber_processes(urls: list[str], key: str) -> Iterator[list[Connection]]:
    """SUBSCRIBERS WebSocket clients in CLIENT_PROCESSES processes of their own, so that reading
    10,000 messages a second does not hold up the loop that places the orders (in one process
    its loop lagged up to a second, and orders went out at half the rate); stopped on exit."""
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    try:
        for n in range(CLIENT_PROCESSES):
            ours, theirs = context.Pipe()
            count = SUBSCRIBERS // CLIENT_PROCESSES + (n < SUBSCRIBERS % CLIENT_PROCESSES)
            # Each process starts on a different server, so both get half of the subscribers.
            order = urls[n % len(urls) :] + urls[: n % len(urls)]
            process = context.Process(
                target=_clients, args=(order, key, count, theirs), daemon=True
            )
            process.start()
            pipes.append(ours)
            processes.append(process)
        yield pipes
    finally:
        for process in processes:
            process.terminate()
            process.join(10)


def _receive(pipe: Connection, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise SoakError(f"a subscriber process did not answer in {timeout:g} s")
    return pipe.recv()


@dataclass
class Placed:
    committed: dict[str, float] = field(default_factory=dict)  # order id -> response arrival
    failures: Counter[str] = field(default_factory=Counter)  # why, -> how many
    seconds: float = 0.0


async def _place_orders(servers: list[str], keys: list[str], products: list[str]) -> Placed:
    """`createOrder` open-loop at RATE for SECONDS, alternating between the servers.

    Each order is due at its time and taken by the first free of PLACER_CONNECTIONS workers,
    each with a client of its own (a kept-alive connection to each server): one client for all
    the requests in flight had httpcore's pool scan every connection and waiting request on each
    change, and with a few hundred the placer's loop stalled for seconds (orders went out late,
    or timed out waiting for the pool)."""
    placed = Placed()
    due: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker() -> None:
        limits = httpx.Limits(max_connections=len(servers))
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            while (n := await due.get()) is not None:
                await _place(client, servers[n % len(servers)], n, keys, products, placed)

    workers = [asyncio.create_task(worker()) for _ in range(PLACER_CONNECTIONS)]
    started = time.perf_counter()
    try:
        for n in range(int(SECONDS * RATE)):
            delay = started + n / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(n)
        for _ in workers:
            due.put_nowait(None)
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
    placed.seconds = time.perf_counter() - started
    return placed


async def _place(
    client: httpx.AsyncClient,
    server: str,
    n: int,
    keys: list[str],
    products: list[str],
    placed: Placed,
) -> None:
    try:
        response = await client.post(
            f"{server}/graphql",
            json={"query": CREATE_ORDER, "variables": {"p": products[n % len(products)]}},
            headers={"Authorization": f"Bearer {keys[n % len(keys)]}"},
        )
    except httpx.HTTPError as error:
        placed.failures[f"{type(error).__name__} {_masked(str(error))[:60]}".strip()] += 1
        return
    try:
        order = response.json()["data"]["createOrder"]["order"]
        placed.committed[order["id"]] = time.perf_counter()
    except (KeyError, TypeError, ValueError):
        placed.failures[_failure(response)] += 1


def _failure(response: httpx.Response) -> str:
    """A short reason for a createOrder that placed nothing: status and error code."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        return f"HTTP {response.status_code} {errors[0].get('extensions', {}).get('code')}"
    payload = ((body.get("data") or {}).get("createOrder") or {}) if isinstance(body, dict) else {}
    codes = sorted({e.get("code") for e in payload.get("errors") or []})
    return f"HTTP {response.status_code} payload {','.join(map(str, codes))}"


async def _loop_lag(lags: list[float]) -> None:
    """The soak's own event loop lag (every 50 ms, how late a sleep woke): its clients share
    one loop, so when it lags, its delivery figures include the lag, not only the servers'."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        lags.append(time.perf_counter() - started - 0.05)


def _cpu(servers: list[ServerProcess], since: list[float] | None = None) -> list[float]:
    """Each server's CPU seconds (since an earlier reading of the same servers)."""
    now = [process_cpu_seconds(server.pid) for server in servers]
    return now if since is None else [t - t0 for t, t0 in zip(now, since, strict=True)]


async def soak() -> int:
    prefix = f"og-soak-{uuid.uuid4().hex[:8]}:"
    with _database() as database_url, tempfile.TemporaryDirectory() as temporary:
        logs = Path(temporary)
        migrate(DatabaseUrl.parse(database_url))
        admin_key, keys, products = await _prepare(database_url)
        env = {
            "LOG_FORMAT": "text",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "DEBUG": "false",
            "WS_KEEPALIVE_SECONDS": "30",
            **RATE_LIMIT_ENV,
            **SOCKET_LIMITS_ENV,
        }
        try:
            async with _server(env, logs / "a.log") as a, _server(env, logs / "b.log") as b:
                servers = [a, b]
                urls = [a.base_url, b.base_url]
                with _subscriber_processes(urls, admin_key) as pipes:
                    for pipe in pipes:
                        if (answer := _receive(pipe, 120)) != "ready":
                            raise SoakError(str(answer))
                    statements_before = _statements(database_url)
                    cpu_before = _cpu(servers)
                    client_before = process_cpu_seconds(os.getpid())
                    loop_lags: list[float] = []
                    ticker = asyncio.create_task(_loop_lag(loop_lags))
                    placed = await _place_orders(urls, keys, products)
                    cpu_load = _cpu(servers, cpu_before)
                    client_cpu = process_cpu_seconds(os.getpid()) - client_before
                    ticker.cancel()
                    for pipe in pipes:
                        pipe.send(set(placed.committed))
                    subscribers: list[Subscriber] = []
                    for pipe in pipes:
                        answer = await asyncio.to_thread(_receive, pipe, SETTLE + 60)
                        if isinstance(answer, str):
                            raise SoakError(answer)
                        subscribers += answer
                lag = await _handler_lag(database_url, len(placed.committed))
                cpu_all = _cpu(servers, cpu_before)
                statements = _statements(database_url) - statements_before
            trouble = _log_trouble([logs / "a.log", logs / "b.log"])
        finally:
            redis = Redis.from_url(REDIS_URL)
            await redis.delete(f"{prefix}events")
            await redis.aclose()
    figures = Figures(
        subscribers, placed, lag, cpu_load, cpu_all, statements, client_cpu, loop_lags
    )
    figures.print()
    if trouble:
        print(f"  server warnings/errors   {trouble.total()}; the most frequent:")
        for message, count in trouble.most_common(8):
            print(f"    {count:6d}  {message}")
    verdicts = figures.verdicts()
    for passed, line in verdicts:
        print(f"  {'PASS' if passed else 'FAIL'}  {line}")
    return 0 if all(passed for passed, _ in verdicts) else 1


async def _settle(subscribers: list[Subscriber], orders: set[str]) -> None:
    """Wait (up to SETTLE) until every subscriber has every order, or its socket has ended."""
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        if all(s.ended or s.received.keys() >= orders for s in subscribers):
            return
        await asyncio.sleep(0.2)


def _statements(database_url: str) -> Counter[str]:
    """Calls of each SQL statement run in the soak's database so far (pg_stat_statements;
    nothing when the server does not load it)."""
    name = DatabaseUrl.parse(database_url).url.database
    # The view exists only in a database with the extension: the soak's own.
    with psycopg.connect(
        str(DatabaseUrl.parse(ADMIN_URL).with_database(name or "")), autocommit=True
    ) as conn:
        try:
            rows = conn.execute(
                "SELECT s.query, s.calls FROM pg_stat_statements s"
                " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
                (name,),
            ).fetchall()
        except psycopg.Error:
            return Counter()
    calls: Counter[str] = Counter()
    for query, count in rows:
        calls[" ".join(str(query).split())] += int(count)
    return calls


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


@dataclass
class Figures:
    subscribers: list[Subscriber]
    placed: Placed
    lag: list[float]
    cpu_load: list[float]  # each server's CPU seconds while orders were placed
    cpu_all: list[float]  # … from the first order until the last handler ran
    statements: Counter[str]  # calls of each SQL statement while the soak ran
    client_cpu: float  # the soak's own CPU seconds while orders were placed
    loop_lags: list[float]

    @property
    def orders(self) -> set[str]:
        return set(self.placed.committed)

    def print(self) -> None:
        orders, placed, lag = self.orders, self.placed, self.lag
        subscribers = self.subscribers
        complete = sum(1 for s in subscribers if s.received.keys() >= orders)
        delivery = [
            s.arrivals[o] - placed.committed[o]
            for s in subscribers
            for o in orders
            if o in s.arrivals
        ]
        failures = ", ".join(f"{n} {why}" for why, n in placed.failures.most_common())
        print()
        print(
            f"Soak: {SECONDS:g} s of createOrder at {RATE:g}/s on two processes (PostgreSQL, "
            f"Redis Streams), {len(subscribers)} orderCreated subscribers"
        )
        print(
            f"  orders placed            {len(orders)} ({len(orders) / placed.seconds:.1f}/s),"
            f" {sum(placed.failures.values())} failed{f' ({failures})' if failures else ''}"
        )
        print(f"  1013 closes              {self.closes_1013}")
        others = [code for s in subscribers for code in s.other_closes]
        print(f"  other closes             {len(others)} {sorted(set(others))}")
        print(f"  complete subscribers     {complete}/{len(subscribers)}")
        print(f"  missing / duplicates     {self.missing} / {self.duplicates}")
        print(
            f"  commit-to-delivery       p50 {percentile(delivery, 0.5) * 1000:.0f} ms,"
            f" p99 {percentile(delivery, 0.99) * 1000:.0f} ms"
        )
        print(
            f"  commit-to-handler lag    p50 {percentile(lag, 0.5):.2f} s,"
            f" p99 {percentile(lag, 0.99):.2f} s, max {max(lag, default=0):.2f} s"
            f" ({len(lag)} of {len(orders)} handled)"
        )
        load = " + ".join(f"{cpu:.1f}" for cpu in self.cpu_load)
        print(
            f"  server CPU under load    {load} s in {placed.seconds:.1f} s"
            f" ({sum(self.cpu_load) / placed.seconds * 100:.0f}% of a core),"
            f" {sum(self.cpu_load) * 1000 / max(len(orders), 1):.1f} ms per order"
        )
        print(
            f"  server CPU to the end    {' + '.join(f'{cpu:.1f}' for cpu in self.cpu_all)} s,"
            f" {sum(self.cpu_all) * 1000 / max(len(orders), 1):.1f} ms per order"
        )
        print(
            f"  soak client              {self.client_cpu:.1f} s CPU"
            f" ({self.client_cpu / placed.seconds * 100:.0f}% of a core), loop lag"
            f" p50 {percentile(self.loop_lags, 0.5) * 1000:.0f} ms,"
            f" p99 {percentile(self.loop_lags, 0.99) * 1000:.0f} ms"
        )
        if self.statements:
            total, per = self.statements.total(), max(len(orders), 1)
            print(
                f"  SQL statements           {total} ({total / per:.1f} per order); the most run:"
            )
            for query, calls in self.statements.most_common(14):
                print(f"    {calls / per:6.2f}/order  {query[:110]}")

    @property
    def closes_1013(self) -> int:
        return sum(s.closes_1013 for s in self.subscribers)

    @property
    def missing(self) -> int:
        return sum(len(self.orders - s.received.keys()) for s in self.subscribers)

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for s in self.subscribers for count in s.received.values())

    def verdicts(self) -> list[tuple[bool, str]]:
        """Issue #14's soak target, one line each: (met, what)."""
        placed = len(self.orders)
        wanted = int(SECONDS * RATE)
        p99 = percentile(self.lag, 0.99)
        return [
            (
                placed == wanted and placed / self.placed.seconds >= RATE * 0.95,
                f"every createOrder placed at the rate ({placed} of {wanted},"
                f" {placed / self.placed.seconds:.1f}/s of {RATE:g}/s)",
            ),
            (self.closes_1013 == 0, f"no 1013 close ({self.closes_1013})"),
            (
                placed > 0 and self.missing == 0 and self.duplicates == 0,
                f"every subscriber got every order exactly once"
                f" ({self.missing} missing, {self.duplicates} duplicates)",
            ),
            (
                len(self.lag) == placed,
                f"every order's confirmation handled ({len(self.lag)} of {placed})",
            ),
            (
                p99 <= LAG_P99_TARGET,
                f"commit-to-handler lag p99 <= {LAG_P99_TARGET:g} s ({p99:.2f} s)",
            ),
        ]


async def _stoppable() -> int:
    """The soak, cancelled by SIGTERM as Ctrl-C cancels it: it unwinds through every `finally`,
    which stops the servers' process groups and the subscriber processes, drops the database and
    deletes the Redis prefix, whoever stops the soak."""
    soaking = asyncio.current_task()
    assert soaking is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, soaking.cancel)
    return await soak()


def main() -> int:
    try:
        return asyncio.run(_stoppable())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("soak stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
