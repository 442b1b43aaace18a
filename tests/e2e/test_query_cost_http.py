"""Query cost, budgets, persisted queries and trusted documents over HTTP (the app in process)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from starlette.applications import Starlette

from app.auth.scopes import ALL_SCOPES
from app.config import (
    PROJECT_ROOT,
    BudgetSettings,
    CostSettings,
    GraphQLLimits,
    PersistedQueryMode,
    PersistedQuerySettings,
    Settings,
)
from app.db.engine import Database, track_statements
from app.domain.documents import sha256_of
from app.main import create_app
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL

GRAPHQL_RESPONSE = "application/graphql-response+json"
# The README's examples.
README_NESTED = """{
  users(first: 20) {
    edges { node { id email profile { displayName }
      orders(first: 10) { totalCount edges { node { id status total { amount currency }
        items { quantity unitPrice { amount } product { sku name } } } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
README_PRODUCTS = "{ products(first: 5) { edges { node { sku name price { amount } } } } }"
TOO_EXPENSIVE = """{ users(first: 100) { edges { node { orders(first: 100) { edges { node {
    items { product { name } } } } } } } } }"""


class Client:
    def __init__(self, http: httpx.AsyncClient, app: Starlette) -> None:
        self.http = http
        self.app = app

    async def post(
        self, body: Any, accept: str = GRAPHQL_RESPONSE, **headers: str
    ) -> httpx.Response:
        return await self.http.post(
            "/graphql",
            json=body,
            headers={"content-type": "application/json", "accept": accept, **headers},
        )

    async def get(self, params: dict[str, Any], **headers: str) -> httpx.Response:
        encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
        return await self.http.get(
            "/graphql", params=encoded, headers={"accept": GRAPHQL_RESPONSE, **headers}
        )

    def admin(self) -> dict[str, str]:
        token, _ = self.app.state.og.auth.tokens.mint(
            client_id="cost-tests", user_id=uuid4(), scope=" ".join(sorted(ALL_SCOPES))
        )
        return {"authorization": f"Bearer {token}"}

    def client_token(self, client_id: str) -> dict[str, str]:
        token, _ = self.app.state.og.auth.tokens.mint(
            client_id=client_id, user_id=None, scope="products:read"
        )
        return {"authorization": f"Bearer {token}"}


Serve = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture(scope="module")
async def cost_db(make_db: MakeDb) -> Database:
    """Its own database: trusted documents are written into it."""
    return await make_db("sqlite", "cost", SMALL)


@pytest.fixture
def serve(cost_db: Database) -> Serve:
    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Client]:
        settings = Settings(
            database_url=str(cost_db.url), graphql=GraphQLLimits(introspection=True), **overrides
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Client(c, app)

    return make


def cost_of(response: httpx.Response) -> dict[str, Any]:
    cost: dict[str, Any] = response.json()["extensions"]["cost"]
    return cost


# --- cost ----------------------------------------------------------------------------------------


async def test_the_readme_queries_report_their_cost(serve: Serve) -> None:
    async with serve() as client:
        nested = await client.post({"query": README_NESTED}, **client.admin())
        products = await client.post({"query": README_PRODUCTS})

    assert nested.status_code == 200, nested.text
    cost = cost_of(nested)
    assert cost["requestedQueryCost"] == 6440
    # SMALL has 6 users with 12 orders of 1-2 items: far fewer objects than asked for.
    users = [e["node"] for e in nested.json()["data"]["users"]["edges"]]
    orders = [o["node"] for u in users for o in u["orders"]["edges"]]
    items = [i for o in orders for i in o["items"]]
    profiles = sum(1 for u in users if u["profile"] is not None)
    expected = len(users) + profiles + 2 * len(orders) + 3 * len(items)
    assert cost["actualQueryCost"] == expected
    assert cost["throttleStatus"]["maximumAvailable"] == 20_000
    assert cost_of(products) == {
        "requestedQueryCost": 10,
        "actualQueryCost": 10,
        "throttleStatus": {
            "maximumAvailable": 20_000,
            "currentlyAvailable": 19_990,
            "restoreRate": 1000.0,
        },
    }


async def test_an_operation_over_max_query_cost_is_refused_before_any_sql(serve: Serve) -> None:
    async with serve() as client:
        headers = client.admin()
        with track_statements() as stats:
            strict = await client.post({"query": TOO_EXPENSIVE}, **headers)
            legacy = await client.post({"query": TOO_EXPENSIVE}, "application/json", **headers)

    assert stats.statements == 0
    assert (strict.status_code, legacy.status_code) == (400, 200)
    for response in (strict, legacy):
        body = response.json()
        assert "data" not in body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        # 100 users x (user + 100 orders x (order + 10 items x (item + product)))
        requested = 100 * (1 + 100 * (1 + 10 * 2))
        assert error["extensions"]["cost"] == {
            "requestedQueryCost": requested,
            "maximumQueryCost": 10_000,
        }
        assert body["extensions"]["cost"]["requestedQueryCost"] == requested


async def test_first_from_variables_is_priced(serve: Serve) -> None:
    query = "query P($n: Int) { products(first: $n) { edges { node { sku } } } }"
    async with serve(cost=CostSettings(max_cost=50)) as client:
        cheap = await client.post({"query": query, "variables": {"n": 50}})
        dear = await client.post({"query": query, "variables": {"n": 51}})

    assert cost_of(cheap)["requestedQueryCost"] == 50
    assert dear.status_code == 400
    assert dear.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


# --- budgets -------------------------------------------------------------------------------------


async def test_a_budget_depletes_refunds_and_refuses_with_429(serve: Serve) -> None:
    query = "query P($n: Int) { products(first: $n) { edges { node { sku } } } }"
    budget = BudgetSettings(maximum=100, restore_rate=0.5)
    async with serve(budget=budget) as client:
        first = await client.post({"query": query, "variables": {"n": 100}})
        with track_statements() as stats:
            refused = await client.post({"query": query, "variables": {"n": 100}})
            legacy = await client.post(
                {"query": query, "variables": {"n": 100}}, "application/json"
            )
        # Another principal (an admin) has its own budget.
        admin = await client.post({"query": query, "variables": {"n": 100}}, **client.admin())

    # 100 asked, the 5 products of SMALL returned: 95 refunded.
    assert cost_of(first)["actualQueryCost"] == 5
    assert cost_of(first)["throttleStatus"]["currentlyAvailable"] == 95
    assert stats.statements == 0
    assert refused.status_code == 429
    assert legacy.status_code == 200
    for response in (refused, legacy):
        body = response.json()
        assert "data" not in body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        # 5 points missing at 0.5 a second.
        assert error["extensions"]["retryAfter"] == 10
        assert response.headers["retry-after"] == "10"
        assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 95
    assert admin.status_code == 200
    assert cost_of(admin)["throttleStatus"]["currentlyAvailable"] == 95


# --- automatic persisted queries -----------------------------------------------------------------


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(query)}}


async def test_apq_over_post_and_get(serve: Serve) -> None:
    query = "query Apq { products(first: 2) { edges { node { sku } } } }"
    async with serve() as client:
        unknown = await client.post({"extensions": persisted(query)})
        unknown_json = await client.post({"extensions": persisted(query)}, "application/json")
        registered = await client.post({"query": query, "extensions": persisted(query)})
        by_hash = await client.post({"extensions": persisted(query)})
        over_get = await client.get({"extensions": persisted(query)})
        signed_in = await client.get({"extensions": persisted(query)}, **client.admin())
        wrong = await client.post({"query": "{ me { id } }", "extensions": persisted(query)})

    assert unknown.status_code == 404
    assert unknown_json.status_code == 200
    for response in (unknown, unknown_json):
        assert response.json() == {
            "errors": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ]
        }
    data = registered.json()["data"]
    assert len(data["products"]["edges"]) == 2
    for response in (by_hash, over_get, signed_in):
        assert response.status_code == 200
        assert response.json()["data"] == data
    # A persisted public query over GET is cacheable; one with credentials is not.
    assert over_get.headers["cache-control"] == "public, max-age=300"
    assert signed_in.headers["cache-control"] == "private, no-store"
    assert "Authorization" in over_get.headers["vary"]
    assert "cache-control" not in registered.headers
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_never_runs_a_persisted_mutation(serve: Serve) -> None:
    mutation = 'mutation M { cancelOrder(id: "T3JkZXI6MQ==") { errors { message } } }'
    async with serve() as client:
        # Registered over POST (where it runs, and fails: anonymous).
        await client.post({"query": mutation, "extensions": persisted(mutation)})
        with track_statements() as stats:
            response = await client.get({"extensions": persisted(mutation)})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert stats.statements == 0


async def test_persisted_queries_off(serve: Serve) -> None:
    query = "{ products(first: 1) { totalCount } }"
    off = PersistedQuerySettings(mode=PersistedQueryMode.OFF)
    async with serve(persisted_queries=off) as client:
        response = await client.post({"query": query, "extensions": persisted(query)})
        plain = await client.post({"query": query})

    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert plain.json()["data"] == {"products": {"totalCount": 5}}


# --- trusted documents ---------------------------------------------------------------------------


async def register(db: Database, manifest: Path) -> tuple[int, str]:
    """`python -m app register-documents MANIFEST`, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "register-documents",
        str(manifest),
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": str(db.url)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode().strip()


async def test_trusted_documents_from_a_manifest(
    serve: Serve, cost_db: Database, tmp_path: Path
) -> None:
    trusted_query = "query Trusted { products(first: 1) { edges { node { sku } } } }"
    other = "query Other { products(first: 1) { totalCount } }"
    manifest = tmp_path / "persisted-query-manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {
                        "id": sha256_of(trusted_query),
                        "name": "Trusted",
                        "type": "query",
                        "body": trusted_query,
                    }
                ],
            }
        )
    )
    first = await register(cost_db, manifest)
    again = await register(cost_db, manifest)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": "{ nope }"}))
    refused_manifest = await register(cost_db, bad)

    assert first == (
        0,
        "registered 1 new trusted document(s) of 1 in persisted-query-manifest.json",
    )
    assert again == (
        0,
        "registered 0 new trusted document(s) of 1 in persisted-query-manifest.json",
    )
    assert refused_manifest[0] == 1

    trusted = PersistedQuerySettings(
        mode=PersistedQueryMode.TRUSTED, open_clients=frozenset({"partner"})
    )
    async with serve(persisted_queries=trusted) as client:
        by_hash = await client.post({"extensions": persisted(trusted_query)})
        by_text = await client.post({"query": trusted_query})
        refused = await client.post({"query": other})
        registering = await client.post({"query": other, "extensions": persisted(other)})
        partner = await client.post({"query": other}, **client.client_token("partner"))
        stranger = await client.post({"query": other}, **client.client_token("stranger"))

    for response in (by_hash, by_text):
        assert response.status_code == 200
        assert len(response.json()["data"]["products"]["edges"]) == 1
    for response in (refused, registering, stranger):
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    assert partner.json()["data"] == {"products": {"totalCount": 5}}
