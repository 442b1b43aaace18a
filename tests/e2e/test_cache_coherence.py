"""Two server processes on one database and one Redis, random interleavings of writes and cached
reads: a writer reads its own write at once, and once a write has reached the other process no
read anywhere returns an older value.

Each example is a random sequence of steps: rename the product on process A or B (admin key), or
read it on A or B through GraphQL (`product`, `products`: the response and query caches) or REST
(`products/{id}`). Values are numbered, so "older" is a comparison. After each write the test
polls the other process until the write is visible there (the propagation the cache promises
within a second; waited for, never timed), then holds every later read to it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import tables
from app.db.engine import Database
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import DEMO_ADMIN_EMAIL, SeedSize
from app.usecases import operators as admin
from bench.servers import subprocess_server as live_server
from resolvers.global_id import to_global_id
from tests.auth_support import signing_pem
from tests.conftest import MakeDb
from tests.events_support import DEADLINE, drop_keys, shared_redis, unique_prefix

pytestmark = pytest.mark.postgresql

RENAME = """mutation($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { product { name } errors { code } } }"""
PRODUCT = "query($id: ID!) { product(id: $id) { name } }"
PAGE = "{ products(first: 50) { edges { node { id name } } } }"


@dataclass
class Cluster:
    urls: tuple[str, str]
    admin_key: str
    product: str
    counter: Iterator[int]


@pytest.fixture(scope="module")
async def coherence_db(make_db: MakeDb) -> tuple[Database, str, str]:
    db = await make_db("postgresql", "cache_coherence", SeedSize(products=3, users=2, orders=0))
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(db), email=DEMO_ADMIN_EMAIL, name="coherence", scopes="admin"
    )
    async with db.read() as conn:
        product = (await conn.execute(select(tables.products.c.id).limit(1))).scalar_one()
    return db, key, to_global_id("Product", product)


@pytest.fixture(scope="module")
async def cluster_env(coherence_db: tuple[Database, str, str]) -> dict[str, str]:
    db, _, _ = coherence_db
    return {
        "DATABASE_URL": str(db.url),
        "OAUTH_SIGNING_KEY": signing_pem(),
        "REDIS_URL": await shared_redis(),
        "REDIS_PREFIX": unique_prefix("coherence"),
        "EVENTS_RELAY_POLL_SECONDS": "0.2",
        "RATE_LIMIT_PER_MINUTE": "10000000",
        "RATE_LIMIT_BURST": "1000000",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "10000000",
        "ANONYMOUS_RATE_LIMIT_BURST": "1000000",
    }


@pytest.fixture(scope="module")
def cluster(
    coherence_db: tuple[Database, str, str],
    cluster_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    _, key, product = coherence_db
    logs = Path(tmp_path_factory.mktemp("coherence"))
    with (
        live_server(cluster_env, logs / "a.log") as a,
        live_server(cluster_env, logs / "b.log") as b,
    ):
        yield Cluster((a.base_url, b.base_url), key, product, itertools.count(1))


@pytest.fixture(scope="module", autouse=True)
async def _drop_cluster_keys(cluster_env: dict[str, str]) -> AsyncIterator[None]:
    yield
    await drop_keys(cluster_env["REDIS_URL"], cluster_env["REDIS_PREFIX"])


def _number(name: str) -> int:
    return int(name.removeprefix("v")) if name.startswith("v") else 0


def read(cluster: Cluster, process: int, how: str) -> int:
    base = cluster.urls[process]
    if how == "rest":
        response = httpx.get(f"{base}/api/v1/products/{cluster.product}", timeout=DEADLINE)
        assert response.status_code == 200, response.text
        return _number(response.json()["name"])
    query, variables = (PRODUCT, {"id": cluster.product}) if how == "one" else (PAGE, {})
    response = httpx.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, timeout=DEADLINE
    )
    body = response.json()
    assert "errors" not in body, body
    if how == "one":
        return _number(body["data"]["product"]["name"])
    nodes = [edge["node"] for edge in body["data"]["products"]["edges"]]
    return _number(next(node["name"] for node in nodes if node["id"] == cluster.product))


def write(cluster: Cluster, process: int) -> int:
    value = next(cluster.counter)
    response = httpx.post(
        f"{cluster.urls[process]}/graphql",
        json={"query": RENAME, "variables": {"id": cluster.product, "name": f"v{value}"}},
        headers={"Authorization": f"Bearer {cluster.admin_key}"},
        timeout=DEADLINE,
    )
    assert response.json()["data"]["updateProduct"]["errors"] == [], response.text
    return value


READS = st.tuples(st.just("read"), st.integers(0, 1), st.sampled_from(["one", "page", "rest"]))
WRITES = st.tuples(st.just("write"), st.integers(0, 1), st.just(""))


@given(steps=st.lists(st.one_of(READS, WRITES), min_size=4, max_size=14))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_read_returns_an_older_value_once_a_write_has_propagated(
    cluster: Cluster, steps: list[tuple[str, int, str]]
) -> None:
    # The newest value each process is held to: a read there must return at least this.
    floor = [0, 0]
    for action, process, how in steps:
        if action == "read":
            seen = read(cluster, process, how)
            assert seen >= floor[process], (steps, floor, process, how, seen)
            continue
        value = write(cluster, process)
        floor[process] = value  # the writer never serves its own stale data after the response
        for how_each in ("one", "page", "rest"):
            assert read(cluster, process, how_each) == value
        other = 1 - process
        # Wait (bounded) for the invalidation to reach the other process, then hold it there too.
        deadline = time.monotonic() + DEADLINE
        while not all(read(cluster, other, h) >= value for h in ("one", "page", "rest")):
            if time.monotonic() > deadline:
                pytest.fail(f"process {other} never saw v{value}")
            time.sleep(0.02)
        floor[other] = value
