"""The read schema end to end through Strawberry, on both databases."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.db.engine import Database
from resolvers.global_id import from_global_id, to_global_id
from tests.graphql import execute

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def _first_user(db: Database) -> dict[str, Any]:
    data = (await execute(db, "{ users(first: 1) { edges { node { id email } } } }")).ok()
    node: dict[str, Any] = data["users"]["edges"][0]["node"]
    return node


async def test_walking_users_with_cursors_sees_all_once(demo_db: Database) -> None:
    query = """query($after: String) { users(first: 64, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id createdAt } } } }"""
    ids: list[str] = []
    after = None
    pages = 0
    while True:
        conn = (await execute(demo_db, query, {"after": after})).ok()["users"]
        pages += 1
        info = conn["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == conn["edges"][0]["cursor"]
        assert info["endCursor"] == conn["edges"][-1]["cursor"]
        ids += [e["node"]["id"] for e in conn["edges"]]
        assert all(ISO_UTC.match(e["node"]["createdAt"]) for e in conn["edges"])
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 4
    assert len(ids) == len(set(ids)) == conn["totalCount"] == 200


async def test_products_have_exact_money(demo_db: Database) -> None:
    data = (
        await execute(
            demo_db,
            "{ products(first: 100) { totalCount"
            " edges { node { sku price { amount currency } } } } }",
        )
    ).ok()["products"]
    assert data["totalCount"] == 50
    skus = [e["node"]["sku"] for e in data["edges"]]
    assert skus == sorted(skus)
    for edge in data["edges"]:
        price = edge["node"]["price"]
        pattern = r"^\d+$" if price["currency"] == "JPY" else r"^\d+\.\d\d$"
        assert re.match(pattern, price["amount"]), price
    assert {e["node"]["price"]["currency"] for e in data["edges"]} == {"USD", "JPY"}


async def test_orders_filter_by_status_and_time(demo_db: Database) -> None:
    query = """query($status: OrderStatus, $after: DateTime) {
        orders(first: 100, status: $status, createdAfter: $after) {
          totalCount edges { node { status createdAt total { amount }
            items { quantity unitPrice { amount } lineTotal { amount } } } } } }"""
    all_cancelled = (await execute(demo_db, query, {"status": "CANCELLED"})).ok()["orders"]
    middle = all_cancelled["edges"][len(all_cancelled["edges"]) // 2]["node"]["createdAt"]
    later = (await execute(demo_db, query, {"status": "CANCELLED", "after": middle})).ok()
    edges = later["orders"]["edges"]
    assert edges
    assert all(
        e["node"]["status"] == "CANCELLED" and e["node"]["createdAt"] > middle for e in edges
    )
    stamps = [e["node"]["createdAt"] for e in edges]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    assert later["orders"]["totalCount"] < all_cancelled["totalCount"]
    for edge in edges:
        node = edge["node"]
        cents = sum(int(i["lineTotal"]["amount"].replace(".", "")) for i in node["items"])
        assert cents == int(node["total"]["amount"].replace(".", ""))


async def test_node_and_typed_lookups(demo_db: Database) -> None:
    user = await _first_user(demo_db)
    query = (
        """query($id: ID!) { node(id: $id) { id ... on User { email } } user(id: $id) { id } }"""
    )
    data = (await execute(demo_db, query, {"id": user["id"]})).ok()
    assert data == {"node": user, "user": {"id": user["id"]}}


async def test_nodes_keeps_order_and_nulls_bad_entries(demo_db: Database) -> None:
    user = await _first_user(demo_db)
    missing = to_global_id("Order", uuid4())
    result = await execute(
        demo_db,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [user["id"], "garbage", missing, user["id"]]},
    )
    assert result.data == {"nodes": [{"id": user["id"]}, None, None, {"id": user["id"]}]}
    assert sorted(zip(result.codes, [e["path"] for e in result.errors], strict=True)) == [
        ("BAD_USER_INPUT", ["nodes", 1]),
        ("NOT_FOUND", ["nodes", 2]),
    ]


async def test_nodes_refuses_more_than_a_hundred_ids(demo_db: Database) -> None:
    ids = [to_global_id("User", uuid4()) for _ in range(101)]
    result = await execute(demo_db, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert result.codes == ["BAD_USER_INPUT"]
    assert "at most 100" in result.errors[0]["message"]


@pytest.mark.parametrize(
    ("field", "argument", "code"),
    [
        ("user", "not-an-id", "BAD_USER_INPUT"),
        ("user", to_global_id("Order", uuid4()), "BAD_USER_INPUT"),
        ("user", to_global_id("User", uuid4()), "NOT_FOUND"),
        ("order", to_global_id("Order", uuid4()), "NOT_FOUND"),
        ("product", to_global_id("Product", uuid4()), "NOT_FOUND"),
        ("node", to_global_id("OrderItem", uuid4()), "BAD_USER_INPUT"),
        ("node", to_global_id("Product", uuid4()), "NOT_FOUND"),
    ],
)
async def test_lookups_by_id_report_why_they_are_null(
    demo_db: Database, field: str, argument: str, code: str
) -> None:
    result = await execute(demo_db, f'{{ {field}(id: "{argument}") {{ id }} }}')
    assert result.data == {field: None}
    assert result.codes == [code]
    assert result.errors[0]["path"] == [field]


@pytest.mark.parametrize(
    "arguments",
    ["first: -1", "first: 101", 'after: "bm9wZQ"', 'after: "%%%"'],
)
async def test_bad_page_arguments_are_bad_user_input(demo_db: Database, arguments: str) -> None:
    result = await execute(demo_db, f"{{ products({arguments}) {{ totalCount }} }}")
    assert result.data is None
    assert result.codes == ["BAD_USER_INPUT"]


async def test_a_cursor_from_another_list_is_refused(demo_db: Database) -> None:
    data = (await execute(demo_db, "{ users(first: 1) { pageInfo { endCursor } } }")).ok()
    cursor = data["users"]["pageInfo"]["endCursor"]
    result = await execute(
        demo_db, "query($c: String) { orders(after: $c) { totalCount } }", {"c": cursor}
    )
    assert result.codes == ["BAD_USER_INPUT"]


async def test_me_is_the_principals_user_or_null(demo_db: Database) -> None:
    assert (await execute(demo_db, "{ me { id } }", principal=ANONYMOUS)).ok() == {"me": None}
    user = await _first_user(demo_db)
    _, pk = from_global_id(user["id"])
    customer = Principal(PrincipalKind.CUSTOMER, user_id=pk, scopes=frozenset({"orders:read"}))
    data = (await execute(demo_db, "{ me { id email } }", principal=customer)).ok()
    assert data == {"me": user}


async def test_nested_orders_page_with_cursor(demo_db: Database) -> None:
    query = """query($after: String) { users(first: 5) { edges { node {
        orders(first: 2, after: $after) { totalCount
          pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { id } } } } } } }"""
    first = (await execute(demo_db, query, {"after": None})).ok()["users"]["edges"]
    busiest = max(first, key=lambda e: e["node"]["orders"]["totalCount"])["node"]["orders"]
    assert busiest["pageInfo"]["hasNextPage"] is True
    assert busiest["pageInfo"]["hasPreviousPage"] is False
    second = (await execute(demo_db, query, {"after": busiest["pageInfo"]["endCursor"]})).ok()[
        "users"
    ]["edges"]
    pages = [e["node"]["orders"] for e in second]
    page = next(p for p in pages if p["totalCount"] == busiest["totalCount"])
    assert page["pageInfo"]["hasPreviousPage"] is True
    assert {e["node"]["id"] for e in page["edges"]}.isdisjoint(
        {e["node"]["id"] for e in busiest["edges"]}
    )
