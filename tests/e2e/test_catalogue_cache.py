"""The catalogue's query cache inside the app: hits cost no SQL, and the writing process reads its
own write at once (its invalidation runs before the mutation answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import select

from app.auth.scopes import ALL_SCOPES, ROLE_SCOPES
from app.config import CacheSettings, Settings
from app.db.engine import Database
from app.db.tables import users
from app.domain.models import Role
from app.http.state import AppState
from app.main import create_app
from app.seed import SeedSize
from resolvers.global_id import to_global_id
from tests.conftest import MakeDb

PRODUCTS = "{ products(first: 3) { totalCount edges { node { id name stock } } } }"
PRODUCT = "query($id: ID!) { product(id: $id) { name stock } }"
RENAME = """mutation($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { product { name } errors { code } } }"""
RESTOCK = """mutation($id: ID!) {
  restockProduct(id: $id, quantity: 5) { product { stock } errors { code } } }"""


class Client:
    def __init__(self, http: httpx.AsyncClient, state: AppState) -> None:
        self.http, self.state = http, state
        self.admin = self.token(uuid4(), ALL_SCOPES)

    def token(self, user: UUID | None, scopes: Iterable[str]) -> dict[str, str]:
        minted, _ = self.state.auth.tokens.mint(
            client_id="cache-tests", user_id=user, scope=" ".join(sorted(scopes))
        )
        return {"authorization": f"Bearer {minted}"}

    async def run(
        self,
        query: str,
        admin: bool = False,
        headers: dict[str, str] | None = None,
        **variables: Any,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=self.admin if admin else (headers or {}),
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
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Client(c, app.state.og)

    return start


async def test_a_repeated_catalogue_read_runs_no_sql(serve: Serve) -> None:
    async with serve(CacheSettings(responses=False)) as client:
        first = await client.run(PRODUCTS)
        again = await client.run(PRODUCTS)
        assert client.statements(first) == 2  # the page and the count
        assert client.statements(again) == 0
        assert again["data"] == first["data"]
        assert client.state.cache is not None
        assert client.state.cache.stats.l1_hits == 2  # the page and the count, from the query cache


async def test_a_public_answer_comes_whole_from_the_response_cache(serve: Serve) -> None:
    async with serve() as client:
        assert client.state.cache is not None
        stats = client.state.cache.stats
        first = await client.run(PRODUCTS)
        hits = stats.l1_hits
        again = await client.run(PRODUCTS)
        assert stats.l1_hits == hits + 1  # one entry: the whole response
        assert again["data"] == first["data"]
        assert "extensions" in again  # debug figures are added per request, never cached
        rest = await client.http.get("/api/v2/products?first=2")
        hits = stats.l1_hits
        again_rest = await client.http.get("/api/v2/products?first=2")
        assert stats.l1_hits == hits + 1
        assert again_rest.content == rest.content
        assert again_rest.headers["link"] == rest.headers["link"]


MINE = "{ me { id email } }"


async def test_per_user_data_is_never_served_across_principals(serve: Serve) -> None:
    """`me`, a user's orders and REST's `me` are never answered from what another asked."""
    async with serve() as client:
        async with client.state.db.read() as conn:
            ids = [row[0] for row in await conn.execute(select(users.c.id).order_by(users.c.id))]
        principals = [client.token(user, ROLE_SCOPES[Role.CUSTOMER]) for user in ids[:2]]
        principals.append({})  # anonymous
        for _ in range(3):
            for index, headers in enumerate(principals):
                mine = (await client.run(MINE, headers=headers))["data"]["me"]
                rest = await client.http.get("/api/v2/me", headers=headers)
                orders = await client.http.get("/api/v2/orders", headers=headers)
                if index == 2:
                    assert mine is None
                    assert rest.status_code == 401
                    assert orders.status_code == 401
                    continue
                expected = to_global_id("User", ids[index])
                assert mine["id"] == expected
                assert rest.json()["id"] == expected
                assert {o["userId"] for o in orders.json()["items"]} <= {expected}


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
