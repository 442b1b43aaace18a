"""Events across real server processes: two processes share one event; a process that dies between
commit and publish loses nothing; Redis going away and coming back loses nothing either.

Deliveries are observed through tests.instrumented's probe (`OG_TEST_EVENT_PROBE=1`,
`GET /_test/events`), a fanout listener on each process, until WebSocket subscriptions can be
used instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.config import EventSettings, Settings
from app.db.engine import Database
from app.domain.events import EventType
from app.http.state import AppState
from app.main import create_app
from app.messaging import cursor
from app.repositories import events as store
from app.seed import SeedSize
from bench.servers import in_process as in_loop_server
from bench.servers import subprocess_server as process_server
from resolvers.global_id import from_global_id, to_global_id
from tests.auth_support import signing_pem
from tests.conftest import MakeDb
from tests.e2e.ws_support import TRANSPORT_WS, Proxy
from tests.events_support import (
    DEADLINE,
    assert_in_order_per_stream,
    create_order,
    customer_key,
    drop_keys,
    order_id_of,
    private_redis,
    shared_redis,
    stored_events,
    take,
    unique_prefix,
    wait_for,
)

SMALL = SeedSize(products=3, users=3, orders=0)
# The app with the test-only probe and crash switch (never `serve`'s).
INSTRUMENTED = "tests.instrumented:create_app"
TIMEOUT = httpx.Timeout(30.0)


def _env(db: Database, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": str(db.url),
        "OAUTH_SIGNING_KEY": signing_pem(),
        "OG_TEST_EVENT_PROBE": "1",
        "EVENTS_RELAY_POLL_SECONDS": "0.2",
        **extra,
    }


async def _published(client: httpx.AsyncClient, base_url: str) -> list[dict[str, Any]]:
    response = await client.get(f"{base_url}/_test/events")
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _order_created(events: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    _, pk = from_global_id(order_id)
    return [e for e in events if e["type"] == EventType.ORDER_CREATED and e["streamId"] == str(pk)]


async def test_an_order_created_on_one_process_reaches_the_other(
    make_db: MakeDb, tmp_path: Path
) -> None:
    redis_url = await shared_redis()
    prefix = unique_prefix("two")
    db = await make_db("postgresql", "two_processes", SMALL)
    key, product = await customer_key(db)
    env = _env(db, REDIS_URL=redis_url, REDIS_PREFIX=prefix)
    try:
        with (
            process_server(env, tmp_path / "a.log", factory=INSTRUMENTED) as a,
            process_server(env, tmp_path / "b.log", factory=INSTRUMENTED) as b,
        ):
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                order_id = order_id_of(await create_order(client, a.base_url, key, product))

                async def on_b() -> list[dict[str, Any]]:
                    return _order_created(await _published(client, b.base_url), order_id)

                [delivered] = await wait_for(on_b, "the order's event on process B")
                stored = _order_created(await stored_events(db), order_id)
                assert [e["id"] for e in stored] == [delivered["id"]]
                assert delivered["sequence"] == stored[0]["sequence"]
                # A, where it was committed, got it through the same stream.
                assert _order_created(await _published(client, a.base_url), order_id)

                # And a real subscriber on B sees an order placed on A.
                assert await _subscriber_on(b.base_url, key, client, a.base_url, product)
    finally:
        await drop_keys(redis_url, prefix)


async def _subscriber_on(
    subscriber_base: str, key: str, client: httpx.AsyncClient, writer_base: str, product: str
) -> bool:
    """Subscribe to orderCreated over WebSocket on one process and place orders on another
    until one arrives (a subscribe is not acknowledged, so the first order may precede it)."""
    ws_url = subscriber_base.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10.0))["type"] == "connection_ack"
        subscribe = {"query": "subscription { orderCreated { id } }"}
        await ws.send(json.dumps({"type": "subscribe", "id": "o", "payload": subscribe}))
        placed: list[str] = []
        for _ in range(10):
            placed.append(order_id_of(await create_order(client, writer_base, key, product)))
            try:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
                    if message.get("type") == "next":
                        return bool(message["payload"]["data"]["orderCreated"]["id"] in placed)
            except TimeoutError:
                continue
    return False


@pytest.mark.parametrize("broker", ["in-process", "redis"])
async def test_a_crash_between_commit_and_publish_loses_nothing(
    broker: str, make_db: MakeDb, tmp_path: Path
) -> None:
    backend = "sqlite" if broker == "in-process" else "postgresql"
    db = await make_db(backend, f"crash_{broker.replace('-', '_')}", SMALL)
    key, product = await customer_key(db)
    extra: dict[str, str] = {}
    prefix = unique_prefix("crash")
    if broker == "redis":
        extra = {"REDIS_URL": await shared_redis(), "REDIS_PREFIX": prefix}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            crashing = _env(db, OG_FAULT_CRASH_AFTER_COMMIT="3", **extra)
            with process_server(crashing, tmp_path / "first.log", factory=INSTRUMENTED) as first:
                placed = [
                    order_id_of(await create_order(client, first.base_url, key, product))
                    for _ in range(2)
                ]
                before = await wait_for(
                    _all_of(client, first.base_url, placed), "the first two orders' events"
                )
                with pytest.raises(httpx.HTTPError):  # the process dies before it answers
                    await create_order(client, first.base_url, key, product)
                assert "Traceback" not in first.log_text()
            stored = await stored_events(db)
            assert len([e for e in stored if e["type"] == EventType.ORDER_CREATED]) == 3
            unpublished = [e for e in stored if e["publishedAt"] is None]
            assert unpublished, "the third order's events were committed, not yet published"

            with process_server(
                _env(db, **extra), tmp_path / "second.log", factory=INSTRUMENTED
            ) as second:

                async def delivered_after_restart() -> list[dict[str, Any]] | None:
                    seen = await _published(client, second.base_url)
                    ids = {e["id"] for e in seen}
                    return seen if all(e["id"] in ids for e in unpublished) else None

                after = await wait_for(delivered_after_restart, "the stranded events")
            everything = before + after
            assert {e["id"] for e in stored} <= {e["id"] for e in everything}, "none lost"
            assert_in_order_per_stream(everything)
            assert all(e["publishedAt"] is not None for e in await stored_events(db))
    finally:
        if broker == "redis":
            await drop_keys(extra["REDIS_URL"], prefix)


def _all_of(client: httpx.AsyncClient, base_url: str, order_ids: list[str]) -> Any:
    async def check() -> list[dict[str, Any]] | None:
        seen = await _published(client, base_url)
        return seen if all(_order_created(seen, o) for o in order_ids) else None

    return check


async def test_redis_going_away_and_coming_back(make_db: MakeDb) -> None:
    db = await make_db("postgresql", "redis_outage", SMALL)
    key, product = await customer_key(db)
    with private_redis() as redis:
        settings = Settings(
            database_url=str(db.url),
            redis_url=redis.url,
            events=EventSettings(relay_poll_seconds=0.2),
        )
        app = create_app(settings)
        async with in_loop_server(app) as base, httpx.AsyncClient(timeout=TIMEOUT) as client:
            state: AppState = app.state.og
            assert state.fanout is not None
            listener = state.fanout.listen([EventType.ORDER_CREATED.value], max_queued=100)
            ready = await client.get(f"{base}/readyz")
            assert (ready.status_code, ready.json()["broker"]) == (200, "ok")
            first = order_id_of(await create_order(client, base, key, product))
            [event] = await take(listener, 1)
            assert str(event.stream_id) == str(from_global_id(first)[1])

            redis.stop()
            missed = [order_id_of(await create_order(client, base, key, product)) for _ in range(3)]
            query = await client.post(
                f"{base}/graphql", json={"query": "{ products(first: 1) { totalCount } }"}
            )
            assert query.status_code == 200
            assert "errors" not in query.json()

            async def degraded() -> bool:
                ready = await client.get(f"{base}/readyz")
                assert ready.status_code == 200, "a broker outage alone keeps the process ready"
                return bool(ready.json()["broker"] == "degraded")

            await wait_for(degraded, "/readyz to report the broker degraded")
            async with db.read() as conn:
                assert await store.unpublished_count(conn) >= 3

            redis.start()  # the same port, empty: the relay appends what it could not
            received = await take(listener, 3)
            assert [str(e.stream_id) for e in received] == [
                str(from_global_id(o)[1]) for o in missed
            ]

            async def ok_again() -> bool:
                ready = await client.get(f"{base}/readyz")
                return bool(ready.status_code == 200 and ready.json()["broker"] == "ok")

            await wait_for(ok_again, "/readyz to report the broker ok")
            listener.close()


class _Resumer:
    """A real client of orderCreated that keeps its last cursor across sockets and processes."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.cursor: str | None = None
        self.received: list[tuple[int, str]] = []  # (position, order id)

    @contextlib.asynccontextmanager
    async def _acknowledged(self, base_url: str) -> AsyncIterator[ClientConnection]:
        """A socket whose connection_init was acknowledged. A 1013 at init (the process just
        started on a loaded machine: authentication was briefly unavailable) is retried with
        backoff, as the README tells clients to."""
        ws_url = base_url.replace("http://", "ws://") + "/graphql"
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}
        deadline = time.monotonic() + DEADLINE
        delay = 0.1
        while True:
            async with connect(ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as ws:
                await ws.send(json.dumps(init))
                try:
                    ack = json.loads(await asyncio.wait_for(ws.recv(), 10.0))
                except ConnectionClosed as closed:
                    if closed.rcvd is None or closed.rcvd.code != 1013:
                        raise
                    if time.monotonic() > deadline:
                        raise AssertionError("init was refused until the deadline") from closed
                else:
                    assert ack["type"] == "connection_ack", ack
                    yield ws
                    return
            await asyncio.sleep(delay)  # backoff before reconnecting, as a client does
            delay = min(delay * 2, 2.0)

    async def follow(self, base_url: str, count: int, cut: Proxy | None = None) -> None:
        """Connect (resuming after the last cursor) and take `count` events; then close the
        socket, or with `cut` (the proxy `base_url` leads through) cut the network under it and
        keep what still arrives until the connection ends."""
        async with self._acknowledged(base_url) as ws:
            subscribe = {
                "query": "subscription R($after: String) { orderCreated(after: $after) { id } }",
                "variables": {"after": self.cursor},
            }
            await ws.send(json.dumps({"type": "subscribe", "id": "r", "payload": subscribe}))
            taken = 0
            # One deadline for the whole batch: keepalive pings must not restart the wait, or a
            # server that stopped delivering would hang the test instead of failing it.
            async with asyncio.timeout(60.0):
                while taken < count:
                    taken += self._take(json.loads(await ws.recv()))
                if cut is not None:
                    cut.cut()  # a reset on both sides, no close frame
                    with contextlib.suppress(ConnectionClosed):
                        while True:  # what was on its way still counts, until the end
                            self._take(json.loads(await ws.recv()))

    def _take(self, message: dict[str, Any]) -> bool:
        """Keep an event's position and cursor; False for a keepalive ping."""
        if message["type"] == "ping":
            return False
        assert message["type"] == "next", message
        payload = message["payload"]
        self.cursor = payload["extensions"]["cursor"]
        position = cursor.decode(self.cursor)
        self.received.append((position, payload["data"]["orderCreated"]["id"]))
        return True


async def test_a_resuming_subscriber_gets_every_event_once_in_order_across_processes(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """Orders are placed continuously on two processes; the subscriber closes its socket, moves to
    the other process, loses its connection to a network cut (a reset, no close frame), and
    loses its process to a SIGTERM, resuming with its last cursor each time: what it received is
    exactly the store's sequence, in order, each once."""
    redis_url = await shared_redis()
    prefix = unique_prefix("resume")
    db = await make_db("postgresql", "resume_processes", SMALL)
    key, product = await customer_key(db)
    env = _env(db, REDIS_URL=redis_url, REDIS_PREFIX=prefix)
    resumer = _Resumer(key)
    placing = True
    targets: list[str] = []

    async def place_orders(client: httpx.AsyncClient) -> int:
        placed = 0
        while placing:
            target = targets[placed % len(targets)]
            try:
                order_id_of(await create_order(client, target, key, product))
                placed += 1
            except (httpx.HTTPError, AssertionError):
                if target not in targets:
                    continue  # the process was stopped; the other takes the orders
                raise
        return placed

    try:
        with process_server(env, tmp_path / "b.log") as b:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                with process_server(env, tmp_path / "a.log") as a:
                    targets.extend([a.base_url, b.base_url])
                    writer = asyncio.create_task(place_orders(client))
                    await resumer.follow(a.base_url, 3)  # the client closes its socket...
                    await resumer.follow(b.base_url, 3)  # ...and resumes on the other process
                    async with Proxy(b) as network:  # the network between it and B is cut
                        await resumer.follow(network.base_url, 3, cut=network)
                    before_a = len(resumer.received)
                    follower = asyncio.create_task(resumer.follow(a.base_url, 1_000_000))

                    async def some_on_a() -> bool:
                        return len(resumer.received) >= before_a + 3

                    await wait_for(some_on_a, "events on process A")
                    targets.remove(a.base_url)
                # A was stopped (SIGTERM) under its subscriber: it resumes on B.
                with contextlib.suppress(ConnectionClosed):
                    await follower
                await resumer.follow(b.base_url, 3)
                placing = False
                await writer

                async def all_published() -> bool:
                    async with db.read() as conn:
                        return await store.unpublished_count(conn) == 0

                await wait_for(all_published, "every order's event to be published")
                stored = [e for e in await _positions(db) if e[0] > resumer.received[0][0] - 1]
                await resumer.follow(b.base_url, len(stored) - len(resumer.received))
        assert resumer.received == stored, "every event once, in the store's order"
    finally:
        await drop_keys(redis_url, prefix)


async def _positions(db: Database) -> list[tuple[int, str]]:
    """The store's OrderCreated events (position, global order id), in position order."""
    async with db.read() as conn:
        events = await store.after_position(conn, 0, [EventType.ORDER_CREATED.value], 100_000)
    return [
        (e.position, to_global_id("Order", e.stream_id)) for e in events if e.position is not None
    ]
