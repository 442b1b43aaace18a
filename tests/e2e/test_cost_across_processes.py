"""Two server processes on one Redis: one query-cost budget per principal, one persisted-query
store."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from app.domain.documents import sha256_of
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.events_support import drop_keys, shared_redis, unique_prefix

PRODUCTS = "query P($n: Int) { products(first: $n) { edges { node { sku } } } }"


async def test_budgets_and_persisted_queries_are_shared_through_redis(
    make_db: MakeDb, tmp_path: Path
) -> None:
    db = await make_db("sqlite", "cost_processes", SMALL)
    redis_url = await shared_redis()
    prefix = unique_prefix("cost")
    env = {
        "DATABASE_URL": str(db.url),
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "QUERY_BUDGET": "100",
        "QUERY_BUDGET_RESTORE_RATE": "0.01",
    }
    try:
        with ExitStack() as stack:
            a = stack.enter_context(live_server(env, tmp_path / "a.log"))
            b = stack.enter_context(live_server(env, tmp_path / "b.log"))

            async def post(base_url: str, body: dict[str, Any]) -> httpx.Response:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                    return await client.post(
                        "/graphql",
                        json=body,
                        headers={"accept": "application/graphql-response+json"},
                    )

            # A: 100 asked, SMALL's 5 products returned; 95 left in the one shared bucket.
            spent = await post(a.base_url, {"query": PRODUCTS, "variables": {"n": 100}})
            # B sees the same bucket: 96 does not fit, 95 does.
            refused = await post(b.base_url, {"query": PRODUCTS, "variables": {"n": 96}})
            fits = await post(b.base_url, {"query": PRODUCTS, "variables": {"n": 95}})
            # A query registered through A is found by its hash through B.
            extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(PRODUCTS)}}
            await post(a.base_url, {"query": PRODUCTS, "extensions": extensions})
            by_hash = await post(b.base_url, {"extensions": extensions, "variables": {"n": 1}})
    finally:
        await drop_keys(redis_url, prefix)

    assert spent.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 95
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert fits.status_code == 200
    assert fits.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 95 - 5
    assert by_hash.status_code == 200, by_hash.text
    assert len(by_hash.json()["data"]["products"]["edges"]) == 1
