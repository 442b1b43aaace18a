"""Statements per query depend on the query's shape, never on the data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import text

from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ROLE_SCOPES
from app.auth.services import AuthServices
from app.config import PoolSettings, Settings
from app.db.engine import Database, track_statements
from app.domain.models import Role
from app.engine import LEVELS, STANDARD
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import DEMO_ADMIN_EMAIL, DEMO_CUSTOMER_EMAIL, SeedSize
from app.usecases import operators as admin
from tests.auth_support import auth_settings
from tests.conftest import MakeDb, OpenDb
from tests.graphql import execute, run

NESTED = """
query Nested {
  users(first: 20) {
    edges { node {
      id email
      profile { displayName }
      orders(first: 10) {
        totalCount
        edges { node {
          id status total { amount currency }
          items { quantity unitPrice { amount } product { id sku name } }
        } }
      }
    } }
  }
}
"""

SMALL = SeedSize(products=5, users=25, orders=40, max_items_per_order=2)
LARGE = SeedSize(products=300, users=400, orders=8000, max_items_per_order=5)


async def _expected(db: Database) -> list[dict[str, Any]]:
    """The nested query's answer computed directly, one simple statement at a time."""
    async with db.read() as conn:
        users = (
            await conn.execute(text("SELECT id, email FROM users ORDER BY created_at, id LIMIT 20"))
        ).all()
        answer = []
        for user_id, email in users:
            orders = (
                await conn.execute(
                    text(
                        "SELECT id, status FROM orders WHERE user_id = :u "
                        "ORDER BY created_at DESC, id DESC"
                    ),
                    {"u": user_id},
                )
            ).all()
            answer.append(
                {"email": email, "orders": len(orders), "statuses": [s for _, s in orders[:10]]}
            )
        return answer


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "large"])
async def test_nested_query_issues_at_most_five_statements(
    backend: str, make_db: MakeDb, size: SeedSize
) -> None:
    db = await make_db(backend, f"budget_{size.orders}", size)
    await execute(db, "{ products(first: 1) { edges { node { id } } } }")  # warm the pool

    result = await execute(db, NESTED)

    data = result.ok()
    assert result.stats.statements == 5
    edges = data["users"]["edges"]
    assert len(edges) == 20
    expected = await _expected(db)
    got = [
        {
            "email": e["node"]["email"],
            "orders": e["node"]["orders"]["totalCount"],
            "statuses": [o["node"]["status"] for o in e["node"]["orders"]["edges"]],
        }
        for e in edges
    ]
    assert got == expected
    for edge in edges:
        for order in edge["node"]["orders"]["edges"]:
            assert order["node"]["items"], "every seeded order has items"


@pytest.mark.parametrize("credential", ["api_key", "jwt"])
async def test_authenticated_nested_query_adds_at_most_one_statement(
    backend: str, make_db: MakeDb, credential: str
) -> None:
    """Authentication costs one statement for an API key and none for a JWT; the query's own
    five are unchanged by authorization (a customer's orders are filtered in SQL)."""
    db = await make_db(backend, f"budget_auth_{credential}", SMALL)
    services = AuthServices.create(Settings(database_url=str(db.url), auth=auth_settings()), db)
    try:
        if credential == "api_key":
            _, key = await admin.create_api_key(
                SqlUnitOfWork.factory(db), email=DEMO_ADMIN_EMAIL, name="b", scopes="admin"
            )
            headers = {"X-API-Key": key}
        else:
            made = await admin.create_client(
                SqlUnitOfWork.factory(db),
                name="bench",
                grant_types="client_credentials",
                scopes="orders:read,users:read",
            )
            token, _ = services.tokens.mint(
                client_id=made.client.client_id, user_id=None, scope="orders:read users:read"
            )
            headers = {"Authorization": f"Bearer {token}"}
        await execute(db, "{ products(first: 1) { edges { node { id } } } }")  # warm the pool

        with track_statements() as auth_stats:
            principal = await services.authenticator.authenticate(headers)
        result = await execute(db, NESTED, principal=principal)

        assert len(result.ok()["users"]["edges"]) == 20
        assert auth_stats.statements == (1 if credential == "api_key" else 0)
        assert result.stats.statements == 5
    finally:
        await services.close()


async def test_authorization_adds_no_statements_to_a_customers_query(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "budget_customer", SMALL)
    async with db.read() as conn:
        customer_id = (
            await conn.execute(
                text("SELECT id FROM users WHERE email = :e"), {"e": DEMO_CUSTOMER_EMAIL}
            )
        ).scalar_one()
    principal = Principal(
        PrincipalKind.CUSTOMER, user_id=UUID(str(customer_id)), scopes=ROLE_SCOPES[Role.CUSTOMER]
    )
    query = """{ orders(first: 20) { totalCount edges { node { id
      user { email profile { displayName } } items { quantity product { sku } } } } } }"""
    await execute(db, "{ products(first: 1) { edges { node { id } } } }")

    result = await execute(db, query, principal=principal)
    unrestricted = await execute(db, query)

    data = result.ok()
    assert result.stats.statements == unrestricted.stats.statements
    assert data["orders"]["totalCount"] < unrestricted.ok()["orders"]["totalCount"]
    assert {e["node"]["user"]["email"] for e in data["orders"]["edges"]} <= {DEMO_CUSTOMER_EMAIL}


POINT = "query Point($id: ID!) { product(id: $id) { id sku name price { amount currency } } }"
LIST = "{ users(first: 50) { edges { node { id email } } } }"


async def _server_statements(server: psycopg.AsyncConnection[tuple[int]], db: Database) -> int:
    """Statements the PostgreSQL server has run in `db` (pg_stat_statements), asked on another
    connection in autocommit mode so the asking adds nothing but its own, left-out statement."""
    found = await server.execute(
        "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s) "
        "AND query NOT LIKE '%%pg_stat_statements%%'",
        (db.url.url.database,),
    )
    row = await found.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("query", "statements"), [(POINT, 1), (LIST, 1), (NESTED, 5)], ids=["point", "list", "nested"]
)
async def test_each_read_statement_is_one_round_trip(
    backend: str, make_db: MakeDb, open_db: OpenDb, query: str, statements: int
) -> None:
    seeded = await make_db(backend, "round_trips", SMALL)
    # One pooled connection, so the warm-up request below prepares every statement on the
    # connection the measured one uses (each connection prepares a statement once).
    db = open_db(seeded.url, Settings(pool=PoolSettings(size=1, max_overflow=0, timeout=10.0)))
    first = await execute(db, "{ products(first: 1) { edges { node { id } } } }")
    variables = {"id": first.ok()["products"]["edges"][0]["node"]["id"]} if query is POINT else None
    await execute(db, query, variables)  # prepares the statements on the pooled connection

    result = await execute(db, query, variables)

    result.ok()
    assert result.stats.statements == statements
    assert result.stats.round_trips == statements
    if backend == "postgresql":
        # The server agrees: the request ran exactly these statements, with no BEGIN, ROLLBACK
        # or ping around them.
        dsn = db.url.url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as server:
            await server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            for executor in (STANDARD, LEVELS):
                before = await _server_statements(server, db)
                await run(db, query, variables, executor=executor)
                assert await _server_statements(server, db) - before == statements, executor
