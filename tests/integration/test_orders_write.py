"""createOrder, cancelOrder, fulfillOrder through the schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.db import tables
from app.db.engine import Database
from app.domain.models import Product
from app.repositories.unit_of_work import RepositoryFactory, SqlUnitOfWork, sql_repositories
from app.unit_of_work import Repositories
from resolvers.global_id import from_global_id, to_global_id
from tests.conftest import MakeDb
from tests.graphql import TEST_ADMIN, Result, execute
from tests.integration.helpers import add_product, count_rows, new_shop, stock_of

CREATE = """mutation($input: CreateOrderInput!) {
  createOrder(input: $input) {
    order { id status total { amount currency } items { quantity product { sku } } }
    errors { field message code }
  }
}"""
CANCEL = """mutation($id: ID!) { cancelOrder(id: $id) {
  order { id status history { type version data } } errors { code } } }"""
FULFILL = """mutation($id: ID!) { fulfillOrder(id: $id) { order { status } errors { code } } }"""

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def line(product: Product, quantity: int) -> dict[str, Any]:
    return {"productId": to_global_id("Product", product.id), "quantity": quantity}


async def order(
    db: Database,
    principal: Principal,
    *lines: dict[str, Any],
    key: str | None = None,
    repositories: RepositoryFactory = sql_repositories,
) -> Result:
    variables = {"input": {"items": list(lines), "idempotencyKey": key}}
    return await execute(db, CREATE, variables, principal=principal, repositories=repositories)


def replacing(**wrappers: Callable[[Any], Any]) -> RepositoryFactory:
    """The SQL repositories with some wrapped, for the unit of work of one operation."""

    def repositories(conn: AsyncConnection) -> Repositories:
        sql = sql_repositories(conn)
        return dataclasses.replace(
            sql, **{name: wrap(getattr(sql, name)) for name, wrap in wrappers.items()}
        )

    return repositories


class _Wrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def events_of(db: Database, type_: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        stmt = select(tables.events).where(tables.events.c.type == type_)
        return [dict(row._mapping) for row in await conn.execute(stmt)]


async def test_fifty_concurrent_orders_for_ten_in_stock_never_oversell(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "oversell")
    product = await add_product(shop.db, stock=10)
    results = await asyncio.gather(
        *(
            order(shop.db, shop.customers[n % len(shop.customers)], line(product, 1))
            for n in range(50)
        )
    )
    payloads = [r.ok()["createOrder"] for r in results]
    placed = [p for p in payloads if p["order"] is not None]
    refused = [p for p in payloads if p["order"] is None]
    assert len(placed) == 10
    assert len(refused) == 40
    assert all(
        p["errors"]
        == [
            {
                "field": ["items", "0", "quantity"],
                "code": "INSUFFICIENT_STOCK",
                "message": p["errors"][0]["message"],
            }
        ]
        for p in refused
    )
    assert await stock_of(shop.db, product.id) == 0
    assert await count_rows(shop.db, "orders") == 10
    assert len(await events_of(shop.db, "OrderCreated")) == 10
    moves = await events_of(shop.db, "ProductStockChanged")
    assert sorted(e["version"] for e in moves) == list(range(2, 12)), "one version per move"
    assert sorted(e["payload"]["stock"] for e in moves) == list(range(10))


async def test_a_short_line_places_nothing(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "short_line")
    plenty, scarce = await add_product(shop.db, stock=5), await add_product(shop.db, stock=1)
    result = (await order(shop.db, shop.customers[0], line(plenty, 2), line(scarce, 2))).ok()
    assert result["createOrder"]["order"] is None
    assert [(e["code"], e["field"]) for e in result["createOrder"]["errors"]] == [
        ("INSUFFICIENT_STOCK", ["items", "1", "quantity"])
    ]
    assert (await stock_of(shop.db, plenty.id), await stock_of(shop.db, scarce.id)) == (5, 1)
    assert await count_rows(shop.db, "orders") == 0


async def test_a_line_short_at_decrement_time_undoes_the_lines_before_it(
    backend: str, make_db: MakeDb
) -> None:
    """The read said there was enough (another order took it since): the database decides."""
    shop = await new_shop(make_db, backend, "short_at_update")
    a, b = await add_product(shop.db, stock=5), await add_product(shop.db, stock=1)
    first, second = sorted([a, b], key=lambda p: p.id)
    if second.stock != 1:  # make the product taken second in ID order the scarce one
        first, second = second, first

    class StaleReads(_Wrapper):
        async def get_many(self, ids: Any) -> dict[Any, Product]:
            found = await self.inner.get_many(ids)
            return {k: Product(**{**_fields(v), "stock": 100}) for k, v in found.items()}

    result = (
        await order(
            shop.db,
            shop.customers[0],
            line(second, 2),
            line(first, 2),
            repositories=replacing(products=StaleReads),
        )
    ).ok()
    errors = result["createOrder"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("INSUFFICIENT_STOCK", ["items", "0", "quantity"])
    ]
    assert await stock_of(shop.db, first.id) == first.stock, "the first decrement was undone"
    assert await stock_of(shop.db, second.id) == second.stock
    assert await count_rows(shop.db, "orders") == 0
    assert await events_of(shop.db, "ProductStockChanged") == []


def _fields(product: Product) -> dict[str, Any]:
    return {name: getattr(product, name) for name in Product.__dataclass_fields__}


async def test_a_failure_before_commit_leaves_no_trace(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "injected")
    product = await add_product(shop.db, stock=5)

    class BrokenAdd(_Wrapper):
        async def add(self, *args: Any) -> None:
            raise RuntimeError("injected failure before commit")

    result = await order(
        shop.db, shop.customers[0], line(product, 2), repositories=replacing(orders=BrokenAdd)
    )
    assert result.codes == ["INTERNAL_SERVER_ERROR"]
    assert await stock_of(shop.db, product.id) == 5
    assert await count_rows(shop.db, "orders") == 0
    assert await events_of(shop.db, "OrderCreated") == []
    assert await events_of(shop.db, "ProductStockChanged") == []


async def test_overlapping_multi_line_orders_do_not_deadlock(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "overlap")
    products = [await add_product(shop.db, stock=1000) for _ in range(4)]
    rng = random.Random(6)
    requests = []
    taken: Counter[Any] = Counter()
    for n in range(30):
        chosen = rng.sample(products, 3)  # each order names its lines in its own order
        quantities = [rng.randint(1, 5) for _ in chosen]
        for p, q in zip(chosen, quantities, strict=True):
            taken[p.id] += q
        lines = [line(p, q) for p, q in zip(chosen, quantities, strict=True)]
        requests.append(order(shop.db, shop.customers[n % len(shop.customers)], *lines))
    results = await asyncio.gather(*requests)
    assert all(r.ok()["createOrder"]["errors"] == [] for r in results)
    for p in products:
        assert await stock_of(shop.db, p.id) == 1000 - taken[p.id]
    versions: dict[Any, list[int]] = {}
    for e in await events_of(shop.db, "ProductStockChanged"):
        versions.setdefault(e["stream_id"], []).append(e["version"])
    for p in products:
        moves = sorted(versions[p.id])
        assert moves == list(range(2, 2 + len(moves)))


async def test_an_idempotency_key_places_one_order(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "idempotency")
    product = await add_product(shop.db, stock=100)
    alice, bob = shop.customers[0], shop.customers[1]

    first = (await order(shop.db, alice, line(product, 2), key="k-1")).ok()["createOrder"]
    again = (await order(shop.db, alice, line(product, 2), key="k-1")).ok()["createOrder"]
    assert first["order"]["id"] == again["order"]["id"]
    assert again["errors"] == []
    assert await stock_of(shop.db, product.id) == 98

    other = (await order(shop.db, alice, line(product, 3), key="k-1")).ok()["createOrder"]
    assert other["order"] is None
    assert [(e["code"], e["field"]) for e in other["errors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["idempotencyKey"])
    ]

    bobs = (await order(shop.db, bob, line(product, 2), key="k-1")).ok()["createOrder"]
    assert bobs["order"]["id"] != first["order"]["id"], "keys of different users never collide"

    together = await asyncio.gather(
        *(order(shop.db, alice, line(product, 1), key="k-2") for _ in range(8))
    )
    ids = {r.ok()["createOrder"]["order"]["id"] for r in together}
    assert len(ids) == 1
    assert await stock_of(shop.db, product.id) == 100 - 2 - 2 - 1
    assert len(await events_of(shop.db, "OrderCreated")) == 3


async def test_a_failed_order_does_not_use_up_its_key(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "idem_failed")
    product = await add_product(shop.db, stock=1)
    failed = (await order(shop.db, shop.customers[0], line(product, 2), key="k")).ok()
    assert failed["createOrder"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    await execute(
        shop.db,
        "mutation($id: ID!) { restockProduct(id: $id, quantity: 1) { errors { code } } }",
        {"id": to_global_id("Product", product.id)},
    )
    placed = (await order(shop.db, shop.customers[0], line(product, 2), key="k")).ok()
    assert placed["createOrder"]["errors"] == []


async def test_bad_lines_are_user_errors(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "bad_lines")
    usd = await add_product(shop.db, stock=5)
    jpy = await add_product(shop.db, stock=5, price="500", currency="JPY")
    mixed = (await order(shop.db, shop.customers[0], line(usd, 1), line(jpy, 1))).ok()
    assert [e["code"] for e in mixed["createOrder"]["errors"]] == ["CURRENCY_MISMATCH"]
    bad_id = {"productId": "nonsense", "quantity": 1}
    result = (await order(shop.db, shop.customers[0], bad_id, line(usd, 0))).ok()
    assert [(e["code"], e["field"]) for e in result["createOrder"]["errors"]] == [
        ("BAD_USER_INPUT", ["items", "0", "productId"])
    ]
    missing = {"productId": to_global_id("Product", shop.customers[0].user_id), "quantity": 1}  # type: ignore[arg-type]
    result = (await order(shop.db, shop.customers[0], missing, line(usd, 1001))).ok()
    assert [(e["code"], e["field"]) for e in result["createOrder"]["errors"]] == [
        ("BAD_USER_INPUT", ["items", "1", "quantity"])
    ]
    result = (await order(shop.db, shop.customers[0], missing)).ok()
    assert [e["code"] for e in result["createOrder"]["errors"]] == ["PRODUCT_NOT_FOUND"]
    assert await count_rows(shop.db, "orders") == 0


async def test_permissions_for_placing_orders(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "order_perms")
    product = await add_product(shop.db, stock=5)
    anonymous = await order(shop.db, ANONYMOUS, line(product, 1))
    assert anonymous.codes == ["UNAUTHENTICATED"]
    assert anonymous.data is None
    reader = Principal(shop.customers[0].kind, shop.customers[0].user_id, scopes=frozenset())
    assert (await order(shop.db, reader, line(product, 1))).codes == ["FORBIDDEN"]
    assert await stock_of(shop.db, product.id) == 5


async def test_cancel_and_fulfil_follow_the_order_life_cycle(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "life_cycle")
    product = await add_product(shop.db, stock=5)
    owner, stranger = shop.customers[0], shop.customers[1]
    placed = (await order(shop.db, owner, line(product, 3))).ok()["createOrder"]["order"]
    assert await stock_of(shop.db, product.id) == 2

    # Another customer may not even read the order: as for reads, it does not exist for them.
    assert (await execute(shop.db, CANCEL, {"id": placed["id"]}, principal=stranger)).codes == [
        "NOT_FOUND"
    ]
    assert (await execute(shop.db, FULFILL, {"id": placed["id"]}, principal=owner)).codes == [
        "FORBIDDEN"
    ]
    cancelled = (await execute(shop.db, CANCEL, {"id": placed["id"]}, principal=owner)).ok()
    body = cancelled["cancelOrder"]
    assert body["errors"] == []
    assert body["order"]["status"] == "CANCELLED"
    assert [(h["type"], h["version"]) for h in body["order"]["history"]] == [
        ("OrderCreated", 1),
        ("OrderCancelled", 2),
    ]
    assert body["order"]["history"][1]["data"] == {"from": "PLACED", "to": "CANCELLED"}
    assert await stock_of(shop.db, product.id) == 5, "cancelling restocks"

    again = (await execute(shop.db, FULFILL, {"id": placed["id"]})).ok()["fulfillOrder"]
    assert again == {"order": None, "errors": [{"code": "INVALID_TRANSITION"}]}

    second = (await order(shop.db, owner, line(product, 1))).ok()["createOrder"]["order"]
    racing = await asyncio.gather(
        execute(shop.db, FULFILL, {"id": second["id"]}),
        execute(shop.db, CANCEL, {"id": second["id"]}, principal=TEST_ADMIN),
    )
    outcomes = sorted(
        [e["code"] for e in r.ok()[name]["errors"]]
        for r, name in zip(racing, ["fulfillOrder", "cancelOrder"], strict=True)
    )
    assert outcomes == [[], ["INVALID_TRANSITION"]], "exactly one of two racing changes wins"
    missing = to_global_id("Order", owner.user_id)  # type: ignore[arg-type]
    assert (await execute(shop.db, FULFILL, {"id": missing})).codes == ["NOT_FOUND"]


async def test_a_reader_who_neither_owns_nor_administers_the_order_may_not_cancel_it(
    backend: str, make_db: MakeDb
) -> None:
    """A client with orders:read and orders:write reads every order, but owns none."""
    shop = await new_shop(make_db, backend, "cancel_by_reader")
    product = await add_product(shop.db, stock=5)
    placed = (await order(shop.db, shop.customers[0], line(product, 2))).ok()["createOrder"]
    partner = Principal(
        PrincipalKind.CLIENT, client_id="partner", scopes=frozenset({"orders:read", "orders:write"})
    )
    result = await execute(shop.db, CANCEL, {"id": placed["order"]["id"]}, principal=partner)
    assert result.codes == ["FORBIDDEN"]
    assert await count_rows(shop.db, "orders", status="PLACED") == 1
    assert await stock_of(shop.db, product.id) == 3, "no stock came back"
    assert await events_of(shop.db, "OrderCancelled") == []


async def test_the_stock_guard_refuses_to_go_below_zero_by_itself(
    backend: str, make_db: MakeDb
) -> None:
    """The conditional UPDATE answers None and changes nothing: the CHECK constraint is a last
    line, never how an oversell is caught."""
    shop = await new_shop(make_db, backend, "stock_guard")
    product = await add_product(shop.db, stock=2)
    async with SqlUnitOfWork(shop.db) as uow:
        assert await uow.products.move_stock(product.id, -3, NOW) is None
        assert await uow.products.move_stock(product.id, 1, NOW, ceiling=2) is None
        moved = await uow.products.move_stock(product.id, -2, NOW)
    assert moved is not None
    assert (moved.stock, moved.version) == (0, product.version + 1)
    assert await stock_of(shop.db, product.id) == 0


async def test_order_changes_reveal_nothing_to_principals_who_may_not_read_the_order(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "change_oracle")
    product = await add_product(shop.db, stock=5)
    owner, other = shop.customers[0], shop.customers[1]
    placed = (await order(shop.db, owner, line(product, 1))).ok()["createOrder"]["order"]
    missing = to_global_id("Order", owner.user_id)  # type: ignore[arg-type]

    # orders:fulfill without read access: a real order and a missing one look the same, and
    # nothing is fulfilled.
    blind = Principal(PrincipalKind.CLIENT, client_id="c", scopes=frozenset({"orders:fulfill"}))
    for target in (placed["id"], missing):
        assert (await execute(shop.db, FULFILL, {"id": target}, principal=blind)).codes == [
            "NOT_FOUND"
        ]
    # A customer with orders:fulfill, and orders:read for their own orders only.
    picker = Principal(
        other.kind, other.user_id, scopes=frozenset({"orders:read", "orders:fulfill"})
    )
    assert (await execute(shop.db, FULFILL, {"id": placed["id"]}, principal=picker)).codes == [
        "NOT_FOUND"
    ]
    assert await count_rows(shop.db, "orders", status="PLACED") == 1

    # Without orders:write, cancelling is FORBIDDEN before any lookup, whether the order exists.
    reader = Principal(other.kind, other.user_id, scopes=frozenset({"orders:read"}))
    for target in (placed["id"], missing):
        assert (await execute(shop.db, CANCEL, {"id": target}, principal=reader)).codes == [
            "FORBIDDEN"
        ]

    warehouse = Principal(
        PrincipalKind.CLIENT, None, scopes=frozenset({"orders:read", "orders:fulfill"})
    )
    done = (await execute(shop.db, FULFILL, {"id": placed["id"]}, principal=warehouse)).ok()
    assert done["fulfillOrder"] == {"order": {"status": "FULFILLED"}, "errors": []}


async def test_a_lost_race_after_every_retry_is_service_unavailable_without_internals(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "lost_race")
    product = await add_product(shop.db, stock=5)
    placed = (await order(shop.db, shop.customers[0], line(product, 1))).ok()["createOrder"]
    order_id = from_global_id(placed["order"]["id"])[1]

    class StaleVersions(_Wrapper):
        async def last_version(self, stream_id: Any) -> int:
            return 0  # every attempt reads a stale version: its event's version is always taken

    result = await execute(
        shop.db,
        FULFILL,
        {"id": placed["order"]["id"]},
        repositories=replacing(events=StaleVersions),
    )
    assert result.codes == ["SERVICE_UNAVAILABLE"]
    message = result.errors[0]["message"]
    assert message == "The request lost a race with another change; retry"
    assert str(order_id) not in message
    assert await count_rows(shop.db, "orders", status="PLACED") == 1
