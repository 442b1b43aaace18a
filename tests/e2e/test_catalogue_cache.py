"""The catalogue's query cache inside the app: hits cost no SQL, and the writing process reads its
own write at once (its invalidation runs before the mutation answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import uuid4

import httpx
import pytest

from app.auth.scopes import ALL_SCOPES
from app.config import CacheSettings, Settings
from app.db.engine import Database
from app.main import create_app
from app.seed import SeedSize
from tests.conftest import MakeDb

PRODUCTS = "{ products(first: 3) { totalCount edges { node { id name stock } } } }"
PRODUCT = "query($id: ID!) { product(id: $id) { name stock } }"
RENAME = """mutation($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { product { name } errors { code } } }"""
RESTOCK = """mutation($id: ID!) {
  restockProduct(id: $id, quantity: 5) { product { stock } errors { code } } }"""


class Client:
    def __init__(self, http: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.http, self.admin = http, admin

    async def run(self, query: str, admin: bool = False, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=self.admin if admin else {},
        )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body
        return body

    @staticmethod
    def statements(body: dict[str, Any]) -> int:
        return int(body["extensions"]["debug"]["sqlStatements"])


Serve = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
async def serve(make_db: MakeDb) -> Serve:
    db: Database = await make_db("sqlite", f"cache_{uuid4().hex[:6]}", SeedSize(5, 3, 3))

    @asynccontextmanager
    async def start(cache: CacheSettings | None = None) -> AsyncIterator[Client]:
        settings = Settings(database_url=str(db.url), debug=True, cache=cache or CacheSettings())
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            token, _ = app.state.og.auth.tokens.mint(
                client_id="cache-tests", user_id=uuid4(), scope=" ".join(sorted(ALL_SCOPES))
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Client(c, {"authorization": f"Bearer {token}"})

    return start


async def test_a_repeated_catalogue_read_runs_no_sql(serve: Serve) -> None:
    async with serve() as client:
        first = await client.run(PRODUCTS)
        again = await client.run(PRODUCTS)
        assert client.statements(first) == 2  # the page and the count
        assert client.statements(again) == 0
        assert again["data"] == first["data"]


async def test_the_writer_reads_its_own_writes_at_once(serve: Serve) -> None:
    async with serve() as client:
        listed = await client.run(PRODUCTS)
        node = listed["data"]["products"]["edges"][0]["node"]
        await client.run(PRODUCT, id=node["id"])  # cached now
        renamed = await client.run(RENAME, admin=True, id=node["id"], name="Renamed")
        assert renamed["data"]["updateProduct"]["errors"] == []
        assert (await client.run(PRODUCT, id=node["id"]))["data"]["product"]["name"] == "Renamed"
        await client.run(RESTOCK, admin=True, id=node["id"])
        read = await client.run(PRODUCT, id=node["id"])
        assert read["data"]["product"]["stock"] == node["stock"] + 5
        first = (await client.run(PRODUCTS))["data"]["products"]["edges"][0]["node"]
        assert (first["name"], first["stock"]) == ("Renamed", node["stock"] + 5)


async def test_with_the_cache_off_every_read_runs_its_sql(serve: Serve) -> None:
    async with serve(CacheSettings(enabled=False)) as client:
        await client.run(PRODUCTS)
        assert client.statements(await client.run(PRODUCTS)) == 2
