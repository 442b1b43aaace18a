"""Resuming subscriptions after a cursor, shared executions, and reconnect storms, over real
WebSockets against one server on SQLite (two processes: tests/e2e/test_events_across_processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from app.config import EventSettings, GraphQLLimits
from app.db.engine import Database
from app.messaging import cursor
from app.repositories import events as store
from bench.subscribers import commit_stock_changes
from resolvers.global_id import from_global_id
from tests.auth_support import auth_settings
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.e2e.ws_support import WAIT, Proxy, Server, Socket, ready_socket, serving, socket
from tests.events_support import wait_for

STOCK = """subscription S($id: ID!, $after: String) {
  productStockChanged(id: $id, after: $after) { id stock } }"""
CREATED = "subscription C($after: String) { orderCreated(after: $after) { id user { id } } }"
STATUS = """subscription S($id: ID, $after: String) {
  orderStatusChanged(id: $id, after: $after) { id status } }"""
# The product's name 300 times: events large enough that a few hundred fill socket buffers.
_NAMES = " ".join(f"n{i}: name" for i in range(300))
WIDE_STOCK = STOCK.replace("{ id stock }", "{ id stock " + _NAMES + " }")
CREATE_PRODUCT = """mutation P($input: CreateProductInput!) {
  createProduct(input: $input) { product { id } errors { message } } }"""
RESTOCK = "mutation R($id: ID!) { restockProduct(id: $id, quantity: 1) { product { stock } } }"
CREATE_ORDER = """mutation C($p: ID!) {
  createOrder(input: {items: [{productId: $p, quantity: 1}]}) { order { id } errors { code } } }"""
CANCEL = "mutation X($id: ID!) { cancelOrder(id: $id) { order { status } errors { code } } }"


@pytest.fixture(scope="module")
async def resume_db(make_db: MakeDb) -> Database:
    return await make_db("sqlite", "resume", SMALL)


@pytest.fixture
async def server(resume_db: Database) -> Any:
    async with serving(resume_db) as served:
        yield served


async def _product(server: Server) -> str:
    query = "{ products(first: 1) { edges { node { id } } } }"
    body = await server.http(query, server.admin_token())
    return str(body["data"]["products"]["edges"][0]["node"]["id"])


async def _new_product(server: Server) -> str:
    """A product of the test's own, listed after the seeded ones (by SKU), so `_product` of
    every other test still finds the same first product."""
    sku = f"ZZ-RESUME-{uuid4().hex[:8]}"
    body = await server.http(
        CREATE_PRODUCT,
        server.admin_token(),
        input={"sku": sku, "name": sku, "price": {"amount": "1.00", "currency": "USD"}, "stock": 0},
    )
    return str(body["data"]["createProduct"]["product"]["id"])


async def _restock(server: Server, product: str) -> int:
    body = await server.http(RESTOCK, server.admin_token(), id=product)
    return int(body["data"]["restockProduct"]["product"]["stock"])


async def _positions(server: Server, product: str) -> list[int]:
    """The store's stock-change positions of one product, in order (what a resumer must get)."""
    _, pk = from_global_id(product)
    async with server.state.db.read() as conn:
        events = await store.after_position(conn, 0, ["ProductStockChanged"], 100_000, pk)
    return [e.position for e in events if e.position is not None]


async def _numbered(server: Server, product: str, count: int) -> list[int]:
    async def all_numbered() -> list[int] | None:
        found = await _positions(server, product)
        return found if len(found) >= count else None

    return await wait_for(all_numbered, "the relay to number the events")


class Resumer:
    """A client that keeps its last cursor and what it received, across sockets."""

    def __init__(self, server: Server, query: str, variables: dict[str, Any], token: str) -> None:
        self.server = server
        self.query = query
        self.variables = variables
        self.token = token
        self.cursor: str | None = None
        self.received: list[dict[str, Any]] = []

    async def subscribe(self, client: Socket) -> None:
        await client.start("r", self.query, {**self.variables, "after": self.cursor})

    async def take(self, client: Socket, count: int) -> None:
        for _ in range(count):
            payload = await client.result("r")
            extensions = client.extensions["r"]
            self.cursor = extensions["cursor"]
            self.received.append(
                {**payload["data"], "event": extensions["event"], "cursor": self.cursor}
            )

    async def take_until_closed(self, client: Socket) -> int | None:
        """Everything the socket still delivers, until it closes: the close code the server
        sent, or None when the connection ended without a close frame."""
        try:
            while True:
                await self.take(client, 1)
        except ConnectionClosed as closed:
            return None if closed.rcvd is None else closed.rcvd.code

    def cursors(self) -> list[int]:
        return [cursor.decode(item["cursor"]) for item in self.received]

    def versions(self) -> list[int]:
        return [int(item["event"]["version"]) for item in self.received]


async def test_resuming_after_a_cursor_replays_what_was_missed_then_goes_live(
    server: Server,
) -> None:
    product = await _product(server)
    resumer = Resumer(server, STOCK, {"id": product}, server.admin_token())
    before = len(await _positions(server, product))
    async with ready_socket(server) as client:
        await resumer.subscribe(client)
        await server.listening(1)
        await _restock(server, product)
        await _restock(server, product)
        await resumer.take(client, 2)
    await server.listening(0)
    missed = [await _restock(server, product) for _ in range(3)]
    await _numbered(server, product, before + 5)
    async with ready_socket(server) as client:
        await resumer.subscribe(client)
        await resumer.take(client, 3)
        # Replayed events resolve like queries, against current rows; `extensions.event` says
        # which change each one was.
        assert [item["productStockChanged"]["stock"] for item in resumer.received[2:]] == [
            missed[-1]
        ] * 3
        live = await _restock(server, product)
        await resumer.take(client, 1)
        assert resumer.received[-1]["productStockChanged"]["stock"] == live
    versions = resumer.versions()
    assert versions == list(range(versions[0], versions[0] + 6)), "each event once, in order"


async def test_a_cursor_must_be_one_this_server_handed_out(server: Server) -> None:
    product = await _product(server)
    async with ready_socket(server) as client:
        for after in ("not a cursor", "ZXYxOjk5OTk5OTk5OQ"):  # garbage; a position never given
            await client.start("x", STOCK, {"id": product, "after": after})
            message = await client.receive()
            assert message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_cursor_older_than_the_replay_window_has_expired(resume_db: Database) -> None:
    async with serving(resume_db, events=EventSettings(replay_window=0.001)) as server:
        product = await _product(server)
        resumer = Resumer(server, STOCK, {"id": product}, server.admin_token())
        async with ready_socket(server) as client:
            await resumer.subscribe(client)
            await server.listening(1)
            await _restock(server, product)
            await resumer.take(client, 1)
            await client.start("late", STOCK, {"id": product, "after": resumer.cursor})
            message = await client.receive()
            assert message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "CURSOR_EXPIRED"


# --- authorization on replay is the live one ------------------------------------------------------


async def _customers(server: Server) -> list[str]:
    body = await server.http(
        "{ orders(first: 50) { edges { node { user { id } } } } }", server.admin_token()
    )
    return sorted({e["node"]["user"]["id"] for e in body["data"]["orders"]["edges"]})


def _client_token(server: Server, client_id: str) -> str:
    """An admin's token through a client of its own (its own rate-limit bucket)."""
    token, _ = server.state.auth.tokens.mint(
        client_id=client_id, user_id=uuid4(), scope="admin products:read", now=None
    )
    return token


def _customer_token(server: Server, user: str) -> str:
    _, pk = from_global_id(user)
    return server.token(pk, "products:read orders:read orders:write")[0]


async def test_replay_shows_a_customer_only_what_it_could_see_live(server: Server) -> None:
    product = await _product(server)
    alice, bob = (await _customers(server))[:2]
    alice_token, bob_token = _customer_token(server, alice), _customer_token(server, bob)
    resumer = Resumer(server, CREATED, {}, alice_token)
    async with ready_socket(server, authorization=f"Bearer {alice_token}") as client:
        await resumer.subscribe(client)
        await server.listening(1)
        await server.http(CREATE_ORDER, alice_token, p=product)
        await resumer.take(client, 1)
    # While Alice is away, Bob and Alice place orders; Bob cancels his.
    bobs = await server.http(CREATE_ORDER, bob_token, p=product)
    bob_order = bobs["data"]["createOrder"]["order"]["id"]
    alices = await server.http(CREATE_ORDER, alice_token, p=product)
    alice_order = alices["data"]["createOrder"]["order"]["id"]
    await server.http(CANCEL, bob_token, id=bob_order)
    async with ready_socket(server, authorization=f"Bearer {alice_token}") as client:
        await resumer.subscribe(client)
        await resumer.take(client, 1)
        assert resumer.received[-1]["orderCreated"] == {"id": alice_order, "user": {"id": alice}}
        # Her own order's status, but never Bob's: refused as if it did not exist.
        await client.start("bob", STATUS, {"id": bob_order, "after": resumer.cursor})
        refused = await client.receive()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "NOT_FOUND"
        await client.start("all", STATUS, {"after": resumer.cursor})
        await server.http(CANCEL, alice_token, id=alice_order)
        status = await client.result("all")
        assert status["data"]["orderStatusChanged"] == {"id": alice_order, "status": "CANCELLED"}


# --- one execution per event for identical subscribers --------------------------------------------


async def test_identical_subscribers_share_one_execution_and_one_encoding(server: Server) -> None:
    product = await _product(server)
    hub = server.state.subscriptions
    assert hub is not None
    groups_before = len(hub.groups)
    admin = server.admin_token()
    async with (
        ready_socket(server, authorization=f"Bearer {admin}") as a,
        ready_socket(server, authorization=f"Bearer {server.admin_token()}") as b,
        ready_socket(server) as anonymous,
    ):
        await a.start("s", STOCK, {"id": product})
        await b.start("s", STOCK, {"id": product, "after": None})
        await anonymous.start("s", STOCK, {"id": product})
        await server.listening(3)
        # Two admins see the same; the anonymous subscriber is another audience.
        assert len(hub.groups) == groups_before + 2
        await _restock(server, product)
        raw = [json.loads(await asyncio.wait_for(c.ws.recv(), WAIT)) for c in (a, b, anonymous)]
        assert raw[0] == raw[1] == raw[2]


async def test_ten_identical_subscribers_cost_one_execution_per_event(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await _new_product(server)
    hub = server.state.subscriptions
    assert hub is not None
    executions: list[int] = []
    execute_events = hub.engine.execute_events

    async def counted(**arguments: Any) -> Any:
        executions.append(len(arguments["payloads"]))
        return await execute_events(**arguments)

    monkeypatch.setattr(hub.engine, "execute_events", counted)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ready_socket(server)) for _ in range(10)]
        for client in clients:
            await client.start("s", STOCK, {"id": product})
        await server.listening(10)
        for _ in range(3):
            await _restock(server, product)
        versions = [event.version for event in (await server.stored_events(product))[-3:]]
        for client in clients:
            received = []
            for _ in range(3):
                await client.result("s")
                received.append(client.extensions["s"]["event"]["version"])
            assert received == versions
    assert executions == [1, 1, 1], "one execution of one event each, for all ten"


# --- any interleaving of commits and reconnects ---------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
async def test_any_interleaving_of_commits_and_reconnects_delivers_the_store_in_order(
    server: Server, seed: int
) -> None:
    """Property: whatever the order of commits, disconnects and resumptions, the concatenation of
    what a resuming client received is the store's sequence for its subscription."""
    rng = random.Random(seed)
    product = await _product(server)
    start = len(await _positions(server, product))
    resumer = Resumer(server, STOCK, {"id": product}, server.admin_token())
    async with ready_socket(server) as client:
        await resumer.subscribe(client)
        await server.listening(1)
        await _restock(server, product)
        await resumer.take(client, 1)
    committed = 1
    for _ in range(6):
        offline = rng.randint(0, 3)  # commits while away
        for _ in range(offline):
            await _restock(server, product)
        committed += offline
        async with ready_socket(server) as client:
            await resumer.subscribe(client)
            online = rng.randint(0, 3)  # commits while connected, racing the replay
            for _ in range(online):
                await _restock(server, product)
            committed += online
            # Read some of it, then drop the socket mid-stream.
            await resumer.take(client, rng.randint(0, committed - len(resumer.received)))
    async with ready_socket(server) as client:
        await resumer.subscribe(client)
        await resumer.take(client, committed - len(resumer.received))
    expected = (await _numbered(server, product, start + committed))[start:]
    assert resumer.cursors() == expected


# --- a network cut, and a client that stops reading -----------------------------------------------


async def _gone(server: Server) -> None:
    """Wait until the server has let go of every subscription."""
    hub = server.state.subscriptions
    assert hub is not None

    async def released() -> bool:
        return hub.subscriber_count == 0

    await wait_for(released, "the server to release the subscription")


async def test_a_subscriber_cut_off_by_the_network_resumes_with_every_event_once(
    server: Server,
) -> None:
    """Restocks are committed continuously; three times the subscriber's TCP connection is cut
    (a reset, no close frame) while events flow, and it resumes with its last cursor through a
    new connection: what it received, concatenated, is the store's sequence."""
    product = await _product(server)
    start = len(await _positions(server, product))
    resumer = Resumer(server, STOCK, {"id": product}, server.admin_token())
    committed = 0
    stop = asyncio.Event()

    async def write() -> None:
        nonlocal committed
        while not stop.is_set():
            await _restock(server, product)
            committed += 1

    writer: asyncio.Task[None] | None = None
    try:
        async with Proxy(server) as proxy:
            for _ in range(3):
                async with ready_socket(server, url=proxy.url) as client:
                    await resumer.subscribe(client)
                    if writer is None:  # the first subscription sees every commit of the test
                        await server.listening(1)
                        writer = asyncio.create_task(write())
                    await resumer.take(client, 3)
                    proxy.cut()
                    # What had reached the client before the cut still counts; then the socket
                    # ends with no close frame.
                    assert await resumer.take_until_closed(client) is None
                # The server notices the dead connection and lets the subscription go.
                await _gone(server)
            stop.set()
            assert writer is not None
            await writer
            async with ready_socket(server, url=proxy.url) as client:
                await resumer.subscribe(client)
                await resumer.take(client, committed - len(resumer.received))
    finally:
        stop.set()
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)
    expected = (await _numbered(server, product, start + committed))[start:]
    assert resumer.cursors() == expected, "every event once, in order"


async def test_a_client_that_stops_reading_is_closed_with_1013_and_resumes_without_a_gap(
    resume_db: Database,
) -> None:
    """A client stops reading: the server's socket buffers fill, its sends wait, and past
    WS_MAX_LAG_SECONDS it closes the socket with 1013 (after what was already buffered). The
    client resubscribes with the last cursor it read and gets the rest, none twice."""
    # Large events, so a few hundred fill the socket buffers (on loopback they grow to
    # megabytes).
    wide = GraphQLLimits(max_aliases=300)
    async with serving(resume_db, wide, max_lag=1.0, max_queued_events=4) as server:
        # A product of its own: its stream gets events straight into the store, past the
        # product row's version, so no other test may restock it.
        product = await _new_product(server)
        start = len(await _positions(server, product))
        resumer = Resumer(server, WIDE_STOCK, {"id": product}, server.admin_token())
        hub = server.state.subscriptions
        assert hub is not None
        async with Proxy(server) as proxy:
            async with ready_socket(server, url=proxy.url, pings=False) as client:
                await resumer.subscribe(client)
                await server.listening(1)
                await _restock(server, product)
                await resumer.take(client, 1)
                proxy.stall()
                committed = 1
                # Events until the server gives up on it (how many fill the buffers depends on
                # the machine's TCP settings; more only makes it surer).
                deadline = time.monotonic() + 120
                while hub.subscriber_count:
                    assert time.monotonic() < deadline, "the stalled subscriber was never closed"
                    await commit_stock_changes(str(resume_db.url), product, 500)
                    committed += 500
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_gone(server), 5.0)
                proxy.flow()
                # It reads what was buffered, then the close.
                assert await resumer.take_until_closed(client) == 1013
            async with ready_socket(server, url=proxy.url) as client:
                await resumer.subscribe(client)
                await resumer.take(client, committed - len(resumer.received))
        expected = (await _numbered(server, product, start + committed))[start:]
        assert resumer.cursors() == expected, "every event once, in order"


# --- reconnect storms -----------------------------------------------------------------------------


async def test_a_hundred_subscribers_reconnecting_at_once_all_end_up_subscribed(
    resume_db: Database,
) -> None:
    auth = auth_settings(rate_per_minute=3_000, rate_burst=20)
    # A hundred sockets from one address and one client: above the per-process socket caps'
    # defaults, which this test is not about.
    async with serving(
        resume_db, auth=auth, max_sockets_per_address=200, max_sockets_per_principal=200
    ) as server:
        product = await _product(server)
        # One client for all of them: one rate-limit bucket; the writer has its own.
        token = _client_token(server, "storm")
        writer = _client_token(server, "storm-writer")
        refusals: list[int] = []

        async def attempt() -> bool:
            """One connection: True once subscribed (an event arrived)."""
            async with socket(server) as client:
                ack = await client.init({"Authorization": f"Bearer {token}"})
                if ack["type"] != "connection_ack":
                    return False  # refused at init (1013): reconnect with backoff
                while True:
                    await client.start("s", STOCK, {"id": product})
                    # A storm on a busy machine: the bound only stops a hang.
                    message = await client.receive(wait=4 * WAIT)
                    if message["type"] == "next":
                        return True
                    assert message["type"] == "error", message
                    [error] = message["payload"]
                    code = error["extensions"]["code"]
                    assert code in ("RATE_LIMITED", "SERVICE_UNAVAILABLE"), error
                    if code == "RATE_LIMITED":
                        refusals.append(error["extensions"]["retryAfter"])
                    await asyncio.sleep(error["extensions"].get("retryAfter", 0.5))  # as told

        async def subscriber() -> None:
            delay = 0.05
            while True:
                try:
                    if await attempt():
                        return
                except (ConnectionClosed, TimeoutError):
                    pass
                await asyncio.sleep(delay)  # backoff between reconnects, not synchronisation
                delay = min(delay * 2, 1.0)

        tasks = [asyncio.create_task(subscriber()) for _ in range(100)]

        async def everyone() -> bool:
            hub = server.state.subscriptions
            assert hub is not None
            if all(task.done() for task in tasks):
                return True
            if hub.subscriber_count >= 1:
                # An event for those subscribed; in the storm a write may be refused as busy
                # (SERVICE_UNAVAILABLE), and the next round writes again.
                async with httpx.AsyncClient(base_url=server.base_url) as http:
                    await http.post(
                        "/graphql",
                        json={"query": RESTOCK, "variables": {"id": product}},
                        headers={"authorization": f"Bearer {writer}"},
                    )
            return False

        try:
            deadline = time.monotonic() + 120  # a storm on a shared machine; only stops a hang
            while not await everyone():
                assert time.monotonic() < deadline, "not all 100 subscribers were served"
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
        for task in tasks:
            task.result()
        assert refusals, "the storm was rate limited"
        assert all(after >= 1 for after in refusals)
