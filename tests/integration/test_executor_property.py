"""Queries generated from the schema get the same answer from both executors.

hypothesis-graphql writes random valid queries over every query field (fragments, aliases,
arguments, nested relations), run by `tests.graphql.execute` under both executors, which must
agree to the byte. The data set is small so a random query stays cheap, and the example count is
bounded so `make test` stays quick; the corpus in test_executor_equivalence covers the shapes
that matter most on purpose.
"""

from __future__ import annotations

import os

import pytest
from graphql import print_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.db.engine import Database
from app.seed import SeedSize
from resolvers.schema import schema
from tests.conftest import MakeDb
from tests.graphql import TEST_ADMIN, execute

# More with EXECUTOR_PROPERTY_EXAMPLES=500 when changing the executor.
EXAMPLES = int(os.environ.get("EXECUTOR_PROPERTY_EXAMPLES", "40"))

PRINCIPALS = [
    TEST_ADMIN,
    Principal(PrincipalKind.CLIENT, client_id="og_users", scopes=frozenset({"users:read"})),
    Principal(PrincipalKind.CLIENT, client_id="og_orders", scopes=frozenset({"orders:read"})),
    ANONYMOUS,
]

DATETIMES = st.sampled_from(
    ["2020-01-01T00:00:00.000Z", "2099-01-01T00:00:00Z", "not a date", "2026-11-26T12:00:00"]
).map(nodes.String)

QUERIES = queries(print_schema(schema._schema), custom_scalars={"DateTime": DATETIMES})

_dbs: dict[str, Database] = {}


@pytest.fixture
async def small_db(backend: str, make_db: MakeDb) -> Database:
    if backend not in _dbs:
        size = SeedSize(products=4, users=6, orders=12, max_items_per_order=2)
        _dbs[backend] = await make_db(backend, "executor_property", size)
    return _dbs[backend]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(query=QUERIES, principal=st.sampled_from(PRINCIPALS))
async def test_generated_queries_answer_the_same(
    small_db: Database, query: str, principal: Principal
) -> None:
    await execute(small_db, query, principal=principal)
