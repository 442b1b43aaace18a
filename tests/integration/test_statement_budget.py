"""Statements per query depend on the query's shape, never on the data."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.db.engine import Database
from app.seed import SeedSize
from tests.conftest import MakeDb
from tests.graphql import execute

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
