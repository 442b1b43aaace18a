"""Subscriptions over a real WebSocket: both protocols, auth, authorization, limits, close codes.

Events reach the server the way a broker hands them over: committed by a real mutation, read back
from the event store and published into the process's fanout (the broker itself is tested apart).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import pytest

from app.db.engine import Database
from app.domain.auth import VERIFICATION_LEEWAY
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.operators import create_api_key, create_user, disable_user
from resolvers.global_id import from_global_id
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.e2e.test_mutations_http import slow_after_commit
from tests.e2e.ws_support import (
    LEGACY_WS,
    TRANSPORT_WS,
    Server,
    ready_socket,
    serving,
    socket,
)
from tests.events_support import wait_for

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])

STOCK = "subscription S($id: ID!) { productStockChanged(id: $id) { id stock } }"
CREATED = "subscription { orderCreated { id status user { id } items { quantity } } }"
STATUS = "subscription S($id: ID) { orderStatusChanged(id: $id) { id status } }"
RESTOCK = (
    "mutation R($id: ID!, $q: Int!) { restockProduct(id: $id, quantity: $q) { product { stock } } }"
)
CREATE_ORDER = """mutation C($p: ID!) {
  createOrder(input: {items: [{productId: $p, quantity: 1}]}) { order { id } errors { code } }
}"""


@pytest.fixture(scope="module")
async def ws_db(make_db: MakeDb) -> Database:
    """A seeded SQLite database of its own: these tests write (orders, restocks)."""
    return await make_db("sqlite", "ws", SMALL)


@pytest.fixture
async def server(ws_db: Database) -> Any:
    async with serving(ws_db) as served:
        yield served


async def _product(server: Server) -> str:
    body = await server.http(
        "{ products(first: 1) { edges { node { id } } } }", server.admin_token()
    )
    return str(body["data"]["products"]["edges"][0]["node"]["id"])


async def _customers(server: Server) -> list[UUID]:
    body = await server.http(
        "{ orders(first: 50) { edges { node { user { id } } } } }", server.admin_token()
    )
    ids = {from_global_id(e["node"]["user"]["id"])[1] for e in body["data"]["orders"]["edges"]}
    return sorted(ids)


def _customer(
    server: Server, user_id: UUID, scopes: str = "products:read orders:read orders:write"
) -> str:
    return f"Bearer {server.token(user_id, scopes)[0]}"


async def _restock(server: Server, product: str, quantity: int) -> int:
    body = await server.http(RESTOCK, server.admin_token(), id=product, q=quantity)
    return int(body["data"]["restockProduct"]["product"]["stock"])


# --- events resolve with fresh loaders -----------------------------------------------------------


@BOTH
async def test_a_stock_change_reaches_the_subscriber_with_the_new_stock(
    server: Server, protocol: str
) -> None:
    product = await _product(server)
    async with ready_socket(server, protocol) as client:
        await client.start("s", STOCK, {"id": product})
        await server.listening(1)
        first = await _restock(server, product, 3)
        await server.publish_latest(product)
        assert await client.result("s") == {
            "data": {"productStockChanged": {"id": product, "stock": first}}
        }

        # A second event: a socket-long cache would still say `first`.
        second = await _restock(server, product, 4)
        assert second == first + 4
        await server.publish_latest(product)
        assert (await client.result("s"))["data"]["productStockChanged"]["stock"] == second


async def test_events_of_other_products_are_not_sent(server: Server) -> None:
    product = await _product(server)
    body = await server.http(
        "{ products(first: 2) { edges { node { id } } } }", server.admin_token()
    )
    other = body["data"]["products"]["edges"][1]["node"]["id"]
    async with ready_socket(server) as client:
        await client.start("s", STOCK, {"id": product})
        await server.listening(1)
        await _restock(server, other, 1)
        await server.publish_latest(other)
        stock = await _restock(server, product, 1)
        await server.publish_latest(product)
        # Events are handled in order: the first result is the second event's.
        assert (await client.result("s"))["data"]["productStockChanged"]["stock"] == stock


# --- authentication in connection_init, authorization per subscription ---------------------------


async def test_customers_see_their_own_new_orders_admins_all(server: Server) -> None:
    product = await _product(server)
    alice, bob = (await _customers(server))[:2]
    async with (
        ready_socket(server, authorization=_customer(server, alice)) as a,
        ready_socket(server, LEGACY_WS, authorization=_customer(server, bob)) as b,
        ready_socket(server, authorization=f"Bearer {server.admin_token()}") as admin,
    ):
        for client in (a, b, admin):
            await client.start("created", CREATED)
        await server.listening(3)
        # A mutation over the socket, as the customer (graphql-transport-ws runs any operation).
        await a.start("create", CREATE_ORDER, {"p": product})
        placed = await a.result("create")
        order = placed["data"]["createOrder"]["order"]["id"]
        assert (await a.receive())["type"] == "complete"
        await server.publish_latest(order)

        seen = await a.result("created")
        assert seen["data"]["orderCreated"]["id"] == order
        assert seen["data"]["orderCreated"]["items"] == [{"quantity": 1}]
        assert (await admin.result("created"))["data"]["orderCreated"]["id"] == order
        # Bob's socket skipped Alice's order silently: his next message is his own order.
        body = await server.http(CREATE_ORDER, _customer(server, bob).split()[1], p=product)
        bobs = body["data"]["createOrder"]["order"]["id"]
        await server.publish_latest(bobs)
        assert (await b.result("created"))["data"]["orderCreated"]["id"] == bobs


async def test_api_key_in_connection_init_authenticates(server: Server) -> None:
    state = server.state
    email = f"ws-{uuid4().hex[:8]}@example.com"
    user = await create_user(
        SqlUnitOfWork.factory(state.db),
        state.auth.passwords,
        email=email,
        password="Pw-123456789-xyz",
    )
    _, key = await create_api_key(
        SqlUnitOfWork.factory(state.db), email=email, name="ws", scopes="orders:read"
    )
    async with ready_socket(server, authorization=f"Bearer {key}") as client:
        await client.start("me", "{ me { id } }")
        me = await client.result("me")
        assert from_global_id(me["data"]["me"]["id"])[1] == user.id
    async with socket(server, LEGACY_WS) as legacy:
        await legacy.send({"type": "connection_init", "payload": {"X-API-Key": key}})
        assert (await legacy.receive())["type"] == "connection_ack"


@BOTH
async def test_subscriptions_the_principal_may_not_make_are_refused(
    server: Server, protocol: str
) -> None:
    alice, bob = (await _customers(server))[:2]
    body = await server.http(
        "query O($u: ID!) { user(id: $u) { orders(first: 1) { edges { node { id } } } } }",
        server.admin_token(),
        u=_global_user(bob),
    )
    bobs_order = body["data"]["user"]["orders"]["edges"][0]["node"]["id"]
    cases: list[tuple[str | None, str, dict[str, Any], str]] = [
        (None, CREATED, {}, "UNAUTHENTICATED"),
        (None, STATUS, {}, "UNAUTHENTICATED"),
        (_customer(server, alice, "products:read"), CREATED, {}, "FORBIDDEN"),
        (_customer(server, alice), STATUS, {"id": bobs_order}, "NOT_FOUND"),
        (f"Bearer {server.token(None, 'products:read')[0]}", STATUS, {}, "FORBIDDEN"),
    ]
    for authorization, query, variables, code in cases:
        async with ready_socket(server, protocol, authorization) as client:
            await client.start("s", query, variables)
            message = await client.receive()
            assert message["type"] == "error", message
            errors = message["payload"]
            first = errors[0] if isinstance(errors, list) else errors
            assert first["extensions"]["code"] == code, (query, first)


def _global_user(pk: UUID) -> str:
    from resolvers.global_id import to_global_id

    return to_global_id("User", pk)


async def test_status_changes_of_one_order_reach_its_owner(server: Server) -> None:
    product = await _product(server)
    alice = (await _customers(server))[0]
    token = _customer(server, alice)
    body = await server.http(CREATE_ORDER, token.split()[1], p=product)
    order = body["data"]["createOrder"]["order"]["id"]
    async with ready_socket(server, authorization=token) as client:
        await client.start("s", STATUS, {"id": order})
        await server.listening(1)
        await server.http(
            "mutation X($id: ID!) { cancelOrder(id: $id) { order { status } } }",
            token.split()[1],
            id=order,
        )
        await server.publish_latest(order)
        assert (await client.result("s"))["data"]["orderStatusChanged"] == {
            "id": order,
            "status": "CANCELLED",
        }


# --- queries over the socket keep the HTTP limits ------------------------------------------------


async def test_queries_over_the_socket_have_the_http_limits_and_codes(server: Server) -> None:
    async with ready_socket(server) as client:
        await client.start("invalid", "{ nope }")
        message = await client.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

        too_wide = "{ " + " ".join(f"f{n}: __typename" for n in range(21)) + " }"
        await client.start("wide", too_wide)
        message = await client.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"

        await client.start("anon", "{ orders(first: 1) { totalCount } }")
        result = await client.result("anon")
        assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await client.receive() == {"id": "anon", "type": "complete"}


# --- close codes ---------------------------------------------------------------------------------


@BOTH
async def test_an_invalid_credential_is_refused_with_4403(server: Server, protocol: str) -> None:
    async with socket(server, protocol) as client:
        await client.send({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
        assert await client.close_code() == 4403


async def test_an_operation_before_the_acknowledgement_is_refused_graphql_transport_ws(
    server: Server,
) -> None:
    async with socket(server, TRANSPORT_WS) as client:
        await client.start("early", "{ __typename }")
        assert await client.close_code() == 4401


async def test_an_operation_before_the_acknowledgement_is_refused_graphql_ws(
    server: Server,
) -> None:
    """The known bypass: a legacy `start` sent without (or before) connection_init."""
    async with socket(server, LEGACY_WS) as client:
        await client.start("early", CREATED)
        assert await client.close_code() == 4401


@BOTH
async def test_no_init_in_time_is_4408(ws_db: Database, protocol: str) -> None:
    async with serving(ws_db, init_timeout=0.2) as server, socket(server, protocol) as client:
        assert await client.close_code() == 4408


@BOTH
async def test_a_duplicate_operation_id_is_4409(server: Server, protocol: str) -> None:
    product = await _product(server)
    async with ready_socket(server, protocol) as client:
        await client.start("same", STOCK, {"id": product})
        await client.start("same", STOCK, {"id": product})
        assert await client.close_code() == 4409


@BOTH
async def test_a_second_init_is_4429(server: Server, protocol: str) -> None:
    async with ready_socket(server, protocol) as client:
        await client.send({"type": "connection_init", "payload": {}})
        assert await client.close_code() == 4429


@BOTH
@pytest.mark.parametrize(
    "message",
    [
        "[1, 2]",
        '{"no": "type"}',
        '{"type": "connection_init", "payload": "not an object"}',
    ],
)
async def test_a_malformed_message_is_4400(server: Server, protocol: str, message: str) -> None:
    async with socket(server, protocol) as client:
        await client.send(message)
        assert await client.close_code() == 4400


@BOTH
async def test_a_malformed_operation_is_4400(server: Server, protocol: str) -> None:
    async with ready_socket(server, protocol) as client:
        kind = "subscribe" if protocol == TRANSPORT_WS else "start"
        await client.send({"type": kind, "id": "1", "payload": {"query": 42}})
        assert await client.close_code() == 4400


# --- limits, keepalive, expiry -------------------------------------------------------------------


@BOTH
async def test_at_most_100_operations_per_socket(server: Server, protocol: str) -> None:
    product = await _product(server)
    async with ready_socket(server, protocol) as client:
        for number in range(100):
            await client.start(f"s{number}", STOCK, {"id": product})
        await server.listening(100)
        await client.start("one-too-many", STOCK, {"id": product})
        message = await client.receive()
        assert message["type"] == "error"
        assert message["id"] == "one-too-many"
        payload = message["payload"]
        first = payload[0] if isinstance(payload, list) else payload
        assert first["extensions"]["code"] == "TOO_MANY_OPERATIONS"
        # The hundred still run: completing one frees a place.
        stop = "complete" if protocol == TRANSPORT_WS else "stop"
        await client.send({"type": stop, "id": "s0"})
        hub = server.state.subscriptions
        assert hub is not None

        async def ended() -> bool:
            return hub.subscriber_count == 99

        # Until s0 has ended: counting it, 100 could be seen before `again` is listening, and
        # the event committed next would be before its time (it subscribes to what follows).
        await wait_for(ended, "s0 to end")
        await client.start("again", STOCK, {"id": product})
        await server.listening(100)
        await _restock(server, product, 1)
        await server.publish_latest(product)
        ids: set[str] = set()
        while len(ids) < 100:
            message = await client.receive()
            if message["type"] in ("next", "data"):
                ids.add(message["id"])
        assert {"again", "s99"} <= ids
        assert "s0" not in ids


async def test_a_subscriber_that_overflows_catches_up_from_the_store(ws_db: Database) -> None:
    async with serving(ws_db, max_queued_events=2) as server:
        product = await _product(server)
        async with (
            ready_socket(server) as slow,
            ready_socket(server, authorization=f"Bearer {server.admin_token()}") as other,
        ):
            await slow.start("s", STOCK, {"id": product})
            await other.start("created", CREATED)
            await server.listening(2)
            await _restock(server, product, 1)
            await slow.result("s")
            version = slow.extensions["s"]["event"]["version"]
            # As if its queue had overflowed: it forgets what is queued and reads the store.
            hub = server.state.subscriptions
            assert hub is not None
            for group in hub.groups.values():
                for member in group.members:
                    member.overflow()
            await _restock(server, product, 1)
            await _restock(server, product, 1)
            # Each change once, in order (replayed ones resolve against current rows).
            await slow.result("s")
            assert slow.extensions["s"]["event"]["version"] == version + 1
            await slow.result("s")
            assert slow.extensions["s"]["event"]["version"] == version + 2

            alice = (await _customers(server))[0]
            body = await server.http(CREATE_ORDER, _customer(server, alice).split()[1], p=product)
            order = body["data"]["createOrder"]["order"]["id"]
            assert (await other.result("created"))["data"]["orderCreated"]["id"] == order
            # The order took one from the stock: that change, then the next, each once.
            await slow.result("s")
            assert slow.extensions["s"]["event"]["version"] == version + 3
            stock = await _restock(server, product, 1)
            assert (await slow.result("s"))["data"]["productStockChanged"]["stock"] == stock
            assert slow.extensions["s"]["event"]["version"] == version + 4


@BOTH
async def test_keepalive_messages_are_sent(ws_db: Database, protocol: str) -> None:
    async with serving(ws_db, keepalive=0.05) as server, ready_socket(server, protocol) as client:
        message = await client.receive(keepalive=True)
        assert message["type"] == ("ping" if protocol == TRANSPORT_WS else "ka")


@BOTH
async def test_an_expired_token_closes_the_socket(
    server: Server, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = server.state.auth.tokens
    issued = tokens.clock()
    token, _ = server.token(uuid4(), "products:read")
    async with ready_socket(server, protocol, f"Bearer {token}") as client:
        # Accepted at connection_init; then the server's clock passes exp and the leeway.
        past_expiry = issued + tokens.lifetime + VERIFICATION_LEEWAY.total_seconds() + 1
        monkeypatch.setattr(tokens, "clock", lambda: past_expiry)
        assert await client.close_code() == 4403


@BOTH
async def test_a_revoked_token_closes_the_socket(server: Server, protocol: str) -> None:
    token, jti = server.token(uuid4(), "products:read")
    async with ready_socket(server, protocol, f"Bearer {token}") as client:
        server.state.auth.revoked.add(jti)
        assert await client.close_code() == 4403


async def test_disabling_the_user_closes_their_api_key_socket(server: Server) -> None:
    state = server.state
    email = f"ws-{uuid4().hex[:8]}@example.com"
    await create_user(
        SqlUnitOfWork.factory(state.db),
        state.auth.passwords,
        email=email,
        password="Pw-123456789-xyz",
    )
    _, key = await create_api_key(
        SqlUnitOfWork.factory(state.db), email=email, name="ws", scopes="orders:read"
    )
    async with ready_socket(server, authorization=f"Bearer {key}") as client:
        await disable_user(SqlUnitOfWork.factory(state.db), email)
        assert await client.close_code() == 4403


async def test_a_closed_socket_leaves_no_listener(server: Server) -> None:
    product = await _product(server)
    fanout = server.state.fanout
    assert fanout is not None
    before = fanout.listener_count
    async with ready_socket(server) as client:
        await client.start("s", STOCK, {"id": product})
        await server.listening(before + 1)
    for _ in range(200):
        if fanout.listener_count == before:
            break
        await asyncio.sleep(0.01)
    assert fanout.listener_count == before


async def test_a_mutation_over_the_socket_is_not_cut_off_by_the_execution_timeout(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As over HTTP: a mutation that committed answers with its result, whatever the deadline."""
    product = await _product(server)
    customer = (await _customers(server))[0]
    state = server.state
    monkeypatch.setattr(
        state,
        "settings",
        replace(state.settings, graphql=replace(state.settings.graphql, execution_timeout=0.05)),
    )
    slow_after_commit(monkeypatch, 0.3)
    async with ready_socket(server, authorization=_customer(server, customer)) as client:
        await client.start("create", CREATE_ORDER, {"p": product})
        placed = await client.result("create")
    assert "errors" not in placed, placed
    order = placed["data"]["createOrder"]["order"]["id"]
    assert [e.type for e in await server.stored_events(order)] == ["OrderCreated"]
