"""The rules table: every principal on every path (`me`, `user`, `users`, `order`, `orders`,
`node`, `nodes`, nested fields). Denied objects look missing (NOT_FOUND)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.auth.scopes import ALL_SCOPES, ROLE_SCOPES
from app.db.engine import Database
from app.db.tables import orders, users
from app.domain.models import Role
from app.seed import DEMO_ADMIN_EMAIL, DEMO_CUSTOMER_EMAIL
from resolvers.global_id import to_global_id
from tests.graphql import execute


@dataclass(frozen=True)
class World:
    customer: UUID
    admin: UUID
    other: UUID
    own_order: str
    other_order: str
    own_order_count: int
    all_orders: int


@pytest.fixture(scope="session")
async def world(demo_db: Database) -> World:
    async with demo_db.read() as conn:
        ids = dict((await conn.execute(select(users.c.email, users.c.id))).all())
        customer, admin = ids[DEMO_CUSTOMER_EMAIL], ids[DEMO_ADMIN_EMAIL]
        rows = (await conn.execute(select(orders.c.id, orders.c.user_id))).all()
    own = [o for o, u in rows if u == customer]
    others = [(o, u) for o, u in rows if u not in (customer, admin)]
    assert own
    assert others
    return World(
        customer=customer,
        admin=admin,
        other=others[0][1],
        own_order=to_global_id("Order", own[0]),
        other_order=to_global_id("Order", others[0][0]),
        own_order_count=len(own),
        all_orders=len(rows),
    )


def customer(w: World, scopes: frozenset[str] = ROLE_SCOPES[Role.CUSTOMER]) -> Principal:
    return Principal(PrincipalKind.CUSTOMER, user_id=w.customer, scopes=scopes)


def admin(w: World) -> Principal:
    return Principal(PrincipalKind.ADMIN, user_id=w.admin, scopes=frozenset(ALL_SCOPES))


def client(*scopes: str) -> Principal:
    return Principal(PrincipalKind.CLIENT, client_id="og_test", scopes=frozenset(scopes))


def uid(pk: UUID) -> str:
    return to_global_id("User", pk)


async def run(db: Database, principal: Principal, query: str, **variables: Any) -> Any:
    return await execute(db, query, variables, principal=principal)


ME = "{ me { id email } }"
USER = "query($id: ID!) { user(id: $id) { id email profile { displayName } } }"
USERS = "{ users(first: 5) { totalCount edges { node { id } } } }"
ORDER = "query($id: ID!) { order(id: $id) { id user { id email profile { displayName } } } }"
ORDERS = "{ orders(first: 100) { totalCount edges { node { user { id } } } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


async def test_me(demo_db: Database, world: World) -> None:
    anonymous = await run(demo_db, ANONYMOUS, ME)
    assert anonymous.errors == []
    assert anonymous.data == {"me": None}
    mine = await run(demo_db, customer(world, frozenset()), ME)
    assert mine.ok()["me"]["email"] == DEMO_CUSTOMER_EMAIL, "me needs no scope"
    machine = await run(demo_db, client("orders:read", "users:read"), ME)
    assert machine.errors == []
    assert machine.data == {"me": None}
    assert (await run(demo_db, admin(world), ME)).ok()["me"]["email"] == DEMO_ADMIN_EMAIL


async def test_user_by_id(demo_db: Database, world: World) -> None:
    other = uid(world.other)
    assert (await run(demo_db, ANONYMOUS, USER, id=other)).codes == ["UNAUTHENTICATED"]
    own = await run(demo_db, customer(world), USER, id=uid(world.customer))
    assert own.ok()["user"]["email"] == DEMO_CUSTOMER_EMAIL
    denied = await run(demo_db, customer(world), USER, id=other)
    assert denied.codes == ["NOT_FOUND"]
    assert denied.data == {"user": None}
    assert (await run(demo_db, client("orders:read"), USER, id=other)).codes == ["NOT_FOUND"]
    reader = await run(demo_db, client("users:read"), USER, id=other)
    assert reader.ok()["user"]["email"]
    assert (await run(demo_db, admin(world), USER, id=other)).ok()["user"]["email"]


async def test_users_list(demo_db: Database, world: World) -> None:
    assert (await run(demo_db, ANONYMOUS, USERS)).codes == ["UNAUTHENTICATED"]
    assert (await run(demo_db, customer(world), USERS)).codes == ["FORBIDDEN"]
    assert (await run(demo_db, client("orders:read"), USERS)).codes == ["FORBIDDEN"]
    assert (await run(demo_db, client("users:read"), USERS)).ok()["users"]["totalCount"] == 200
    assert (await run(demo_db, admin(world), USERS)).ok()["users"]["totalCount"] == 200


async def test_order_by_id(demo_db: Database, world: World) -> None:
    own, other = world.own_order, world.other_order
    assert (await run(demo_db, ANONYMOUS, ORDER, id=own)).codes == ["UNAUTHENTICATED"]
    mine = await run(demo_db, customer(world), ORDER, id=own)
    assert mine.ok()["order"]["user"]["email"] == DEMO_CUSTOMER_EMAIL
    for principal, order_id in (
        (customer(world), other),
        (customer(world, frozenset({"products:read"})), own),
        (client("users:read"), other),
    ):
        denied = await run(demo_db, principal, ORDER, id=order_id)
        assert denied.codes == ["NOT_FOUND"]
        assert denied.data == {"order": None}
    # The order is readable; its owner is a user like any other: without users:read the
    # same answer as `user(id)`, NOT_FOUND (the review saw id, creation time and full name).
    machine = await run(demo_db, client("orders:read"), ORDER, id=other)
    assert machine.codes == ["NOT_FOUND"]
    assert machine.data == {"order": {"id": other, "user": None}}
    reader = await run(demo_db, client("orders:read", "users:read"), ORDER, id=other)
    assert reader.ok()["order"]["user"]["email"]
    assert (await run(demo_db, admin(world), ORDER, id=other)).ok()["order"]["user"]["email"]


async def test_orders_list(demo_db: Database, world: World) -> None:
    assert (await run(demo_db, ANONYMOUS, ORDERS)).codes == ["UNAUTHENTICATED"]
    mine = (await run(demo_db, customer(world), ORDERS)).ok()["orders"]
    assert mine["totalCount"] == world.own_order_count
    assert {e["node"]["user"]["id"] for e in mine["edges"]} == {uid(world.customer)}
    no_scope = customer(world, frozenset({"products:read"}))
    assert (await run(demo_db, no_scope, ORDERS)).codes == ["FORBIDDEN"]
    assert (await run(demo_db, client("users:read"), ORDERS)).codes == ["FORBIDDEN"]
    everyone = (await run(demo_db, client("orders:read", "users:read"), ORDERS)).ok()["orders"]
    assert everyone["totalCount"] == world.all_orders
    # Without users:read the orders are listed, their owners are not (as `user(id)` says).
    owners_hidden = await run(demo_db, client("orders:read"), ORDERS)
    assert set(owners_hidden.codes) == {"NOT_FOUND"}
    hidden = owners_hidden.data["orders"]
    assert hidden["totalCount"] == world.all_orders
    assert {edge["node"]["user"] for edge in hidden["edges"]} == {None}
    assert (await run(demo_db, admin(world), ORDERS)).ok()["orders"]["totalCount"] == 2000


async def test_node_and_nodes(demo_db: Database, world: World) -> None:
    product = await run(demo_db, ANONYMOUS, "{ products(first: 1) { edges { node { id } } } }")
    product_id = product.ok()["products"]["edges"][0]["node"]["id"]
    assert (await run(demo_db, ANONYMOUS, NODE, id=product_id)).ok()["node"]["id"] == product_id
    assert (await run(demo_db, ANONYMOUS, NODE, id=world.own_order)).codes == ["UNAUTHENTICATED"]
    for forbidden in (world.other_order, uid(world.other)):
        denied = await run(demo_db, customer(world), NODE, id=forbidden)
        assert denied.codes == ["NOT_FOUND"]
        assert denied.data == {"node": None}

    ids = [world.own_order, world.other_order, uid(world.other), product_id, uid(world.customer)]
    result = await run(demo_db, customer(world), NODES, ids=ids)

    assert result.data is not None
    got = [None if n is None else n["id"] for n in result.data["nodes"]]
    assert got == [world.own_order, None, None, product_id, uid(world.customer)]
    assert result.codes == ["NOT_FOUND", "NOT_FOUND"]
    assert sorted(e["path"][1] for e in result.errors) == [1, 2]


async def test_nested_fields(demo_db: Database, world: World) -> None:
    nested = """{ me { orders(first: 3) { totalCount
      edges { node { user { email } items { product { sku } } } } } } }"""
    mine = (await run(demo_db, customer(world), nested)).ok()["me"]["orders"]
    assert mine["totalCount"] == world.own_order_count
    without = await run(demo_db, customer(world, frozenset({"products:read"})), nested)
    assert without.codes == ["FORBIDDEN"]
    # OrderConnection! is the contract, so the error nulls the nearest nullable parent, `me`.
    assert without.data == {"me": None}
    # A client reaching a user through an order needs users:read for the user, as any path.
    via_order = "query($id: ID!) { order(id: $id) { user { orders(first: 1) { totalCount } } } }"
    machine = await run(demo_db, client("orders:read"), via_order, id=world.other_order)
    assert machine.codes == ["NOT_FOUND"]
    reader = await run(
        demo_db, client("orders:read", "users:read"), via_order, id=world.other_order
    )
    assert reader.ok()["order"]["user"]["orders"]["totalCount"] >= 1


async def test_every_path_to_a_user_asks_the_same_rule(demo_db: Database, world: World) -> None:
    """`user(id)`, `node(id)` and an order's `user` give one answer per principal."""
    paths = {
        "user": ("query($id: ID!) { user(id: $id) { id createdAt } }", uid(world.other)),
        "node": ("query($id: ID!) { node(id: $id) { id } }", uid(world.other)),
        "order.user": (
            "query($id: ID!) { order(id: $id) { user { id createdAt } } }",
            world.other_order,
        ),
    }
    for principal, readable in (
        (client("orders:read"), False),
        (client("orders:read", "users:read"), True),
        (admin(world), True),
    ):
        for name, (query, id_) in paths.items():
            result = await run(demo_db, principal, query, id=id_)
            assert (result.codes == []) is readable, (principal, name, result.codes)
