"""Mutations over HTTP with real credentials: the app with its lifespan, on both databases.

A user signs up anonymously and gets the welcome email through the dispatcher; a user token
makes an API key, the key places and cancels an order; a client token with orders:fulfill
fulfils one; refusals are top-level UNAUTHENTICATED / FORBIDDEN errors; and fifty concurrent
orders over HTTP for ten in stock place exactly ten.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from app.db import tables
from app.email import Email, InMemoryEmailSender
from app.usecases import orders as usecases
from resolvers.global_id import from_global_id, to_global_id
from tests.auth_support import AuthApp, running_app
from tests.conftest import MakeDb
from tests.integration.helpers import USERS_ONLY, add_product, count_rows, stock_of

REGISTER = """mutation($input: RegisterUserInput!) {
  registerUser(input: $input) { user { id } errors { field code } } }"""
CREATE_KEY = """mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { apiKey { id scopes last4 } key errors { code } } }"""
REVOKE_KEY = (
    """mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }"""
)
CREATE_ORDER = """mutation($input: CreateOrderInput!) {
  createOrder(input: $input) { order { id status } errors { field code } } }"""
CANCEL = """mutation($id: ID!) { cancelOrder(id: $id) { order { status } errors { code } } }"""
FULFILL = """mutation($id: ID!) { fulfillOrder(id: $id) { order { status } errors { code } } }"""
GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json"}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def order_input(product_id: UUID, quantity: int = 1) -> dict[str, Any]:
    return {"items": [{"productId": to_global_id("Product", product_id), "quantity": quantity}]}


@dataclass
class Mailbox(InMemoryEmailSender):
    """Says when mail arrives: the dispatcher sends it in the background, after commit."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, email: Email) -> None:
        await super().send(email)
        self.arrived.set()

    async def first(self) -> None:
        async with asyncio.timeout(30):
            await self.arrived.wait()


def user_token(app: AuthApp, user_id: UUID, scope: str) -> str:
    """A user's access token, as the authorization-code flow would issue it."""
    token, _ = app.services.tokens.mint(client_id="e2e-web", user_id=user_id, scope=scope)
    return token


async def test_sign_up_key_order_cancel_and_fulfil_over_http(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "mutations_http", USERS_ONLY)
    product = await add_product(db, stock=5)
    sender = Mailbox()
    async with running_app(db.url, email_sender=sender) as app:
        signed_up = await app.graphql(
            REGISTER, input={"email": "new@example.com", "password": "Sturdy-pass-1"}
        )
        payload = ok(signed_up)["registerUser"]
        assert payload["errors"] == []
        _, user_id = from_global_id(payload["user"]["id"])
        await sender.first()
        assert [(m.to, m.subject) for m in sender.sent] == [
            ("new@example.com", "Welcome to ordergraph")
        ]

        token = user_token(app, user_id, "products:read orders:read orders:write")
        made = await app.graphql(
            CREATE_KEY,
            bearer(token),
            input={"name": "script", "scopes": ["orders:read", "orders:write"]},
        )
        key = ok(made)["createApiKey"]["key"]
        key_id = ok(made)["createApiKey"]["apiKey"]["id"]
        assert key.startswith("sk_live_")

        placed = ok(
            await app.graphql(CREATE_ORDER, {"X-API-Key": key}, input=order_input(product.id, 2))
        )
        order = placed["createOrder"]["order"]
        assert order["status"] == "PLACED"
        cancelled = ok(await app.graphql(CANCEL, bearer(key), id=order["id"]))
        assert cancelled["cancelOrder"] == {"order": {"status": "CANCELLED"}, "errors": []}
        assert await stock_of(db, product.id) == 5

        second = ok(await app.graphql(CREATE_ORDER, bearer(key), input=order_input(product.id)))
        second_id = second["createOrder"]["order"]["id"]
        refused = await app.graphql(FULFILL, bearer(key), id=second_id)
        assert refused.status_code == 200
        assert codes(refused) == ["FORBIDDEN"], "a customer's key lacks orders:fulfill"
        assert refused.json()["data"] is None
        warehouse = await app.client(scopes="orders:read,orders:fulfill", name="warehouse")
        fulfilled = await app.graphql(FULFILL, bearer(await app.token(warehouse)), id=second_id)
        assert ok(fulfilled)["fulfillOrder"] == {"order": {"status": "FULFILLED"}, "errors": []}

        anonymous = await app.graphql(CREATE_ORDER, input=order_input(product.id))
        assert codes(anonymous) == ["UNAUTHENTICATED"]
        wider = await app.graphql(
            CREATE_KEY, bearer(key), input={"name": "more", "scopes": ["orders:fulfill"]}
        )
        assert codes(wider) == ["FORBIDDEN"], "a key cannot mint a wider key"

        over_get = await app.http.get(
            "/graphql",
            params={"query": 'mutation { revokeApiKey(id: "x") { errors { code } } }'},
            headers=bearer(key),
        )
        assert over_get.status_code == 405
        assert over_get.headers["allow"] == "POST"

        revoked = await app.graphql(REVOKE_KEY, bearer(token), id=key_id)
        assert ok(revoked)["revokeApiKey"]["apiKey"]["revokedAt"] is not None
        after = await app.graphql(CREATE_ORDER, bearer(key), input=order_input(product.id))
        assert after.status_code == 401, "a revoked key is refused from the next request on"
        assert codes(after) == ["UNAUTHENTICATED"]
        assert await count_rows(db, "orders") == 2


async def test_sign_ups_are_limited_per_peer_address_over_http(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "sign_up_limit_http", USERS_ONLY)
    async with running_app(db.url, sign_ups_per_address=2) as app:
        async with app.peer("203.0.113.5") as crowded, app.peer("203.0.113.6") as other:

            async def sign_up(client: httpx.AsyncClient, n: int) -> httpx.Response:
                body = {
                    "query": REGISTER,
                    "variables": {
                        "input": {"email": f"peer{n}@example.com", "password": "Sturdy-pass-1"}
                    },
                }
                return await client.post("/graphql", json=body, headers=GRAPHQL_RESPONSE)

            for n in range(2):
                assert ok(await sign_up(crowded, n))["registerUser"]["errors"] == []
            limited = await sign_up(crowded, 2)
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert codes(limited) == ["RATE_LIMITED"]
            assert ok(await sign_up(other, 2))["registerUser"]["errors"] == []
        assert await count_rows(db, "users", email="peer2@example.com") == 1


async def test_fifty_concurrent_orders_over_http_for_ten_in_stock(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "oversell_http", USERS_ONLY)
    product = await add_product(db, stock=10)
    async with db.read() as conn:
        users = list((await conn.execute(select(tables.users.c.id))).scalars())
    async with running_app(db.url) as app:
        tokens = [user_token(app, u, "products:read orders:read orders:write") for u in users]
        responses = await asyncio.gather(
            *(
                app.graphql(
                    CREATE_ORDER, bearer(tokens[n % len(tokens)]), input=order_input(product.id)
                )
                for n in range(50)
            )
        )
    payloads = [ok(r)["createOrder"] for r in responses]
    placed = [p for p in payloads if p["order"] is not None]
    refused = [p["errors"] for p in payloads if p["order"] is None]
    assert len(placed) == 10
    assert refused == [[{"field": ["items", "0", "quantity"], "code": "INSUFFICIENT_STOCK"}]] * 40
    assert await stock_of(db, product.id) == 0
    assert await count_rows(db, "orders") == 10
    assert await count_rows(db, "events", type="OrderCreated") == 10


def slow_after_commit(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """createOrder commits, then its operation runs on past the execution deadline."""
    real = usecases.create_order

    async def slow(*args: Any, **kwargs: Any) -> Any:
        outcome = await real(*args, **kwargs)
        await asyncio.sleep(seconds)  # the deadline passes here; it is no assertion
        return outcome

    monkeypatch.setattr(usecases, "create_order", slow)


async def test_a_mutation_past_the_execution_timeout_answers_with_what_it_committed(
    backend: str, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_db(backend, "mutation_deadline", USERS_ONLY)
    product = await add_product(db, stock=5)
    async with db.read() as conn:
        user_id = (await conn.execute(select(tables.users.c.id))).scalars().first()
    assert user_id is not None
    async with running_app(db.url) as app:
        state = app.app.state.og
        state.settings = replace(
            state.settings, graphql=replace(state.settings.graphql, execution_timeout=0.05)
        )
        slow_after_commit(monkeypatch, 0.3)
        token = user_token(app, user_id, "orders:read orders:write")
        placed = await app.graphql(
            CREATE_ORDER, {**bearer(token), **GRAPHQL_RESPONSE}, input=order_input(product.id)
        )

    order = ok(placed)["createOrder"]["order"]
    assert order["status"] == "PLACED"
    async with db.read() as conn:
        stored = list((await conn.execute(select(tables.orders.c.id))).scalars())
    assert stored == [from_global_id(order["id"])[1]], "one order, the one reported"
