"""The benchmarked queries and the shapes their answers must have."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRODUCT = """
query Product($id: ID!) {
  product(id: $id) { id sku name price { amount currency } }
}
"""

USERS = """
query Users {
  users(first: 50) { edges { node { id email } } }
}
"""

NESTED = """
query Nested {
  users(first: 20) { edges { node {
    id email profile { displayName }
    orders(first: 10) { edges { node {
      id status total { amount currency }
      items { quantity unitPrice { amount } product { id sku name } }
    } } }
  } } }
}
"""

PRODUCT_PAGE = """
query ProductPage {
  products(first: 50) { edges { cursor node { id sku name price { amount currency } stock } } }
}
"""

FIRST_PRODUCT = "{ products(first: 1) { edges { node { id } } } }"

ORDER_STATUSES = frozenset({"PLACED", "FULFILLED", "CANCELLED"})


class ShapeError(AssertionError):
    """An answer that does not look like the query asked for: measuring it would mislead."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


def _text(value: Any, where: str) -> str:
    _require(isinstance(value, str) and value != "", f"{where} is not a non-empty string")
    assert isinstance(value, str)
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    _require(isinstance(value, dict), f"{where} is not an object")
    assert isinstance(value, dict)
    return value


def _edges(connection: Any, where: str) -> list[Any]:
    edges = _obj(connection, where).get("edges")
    _require(isinstance(edges, list), f"{where}.edges is not a list")
    assert isinstance(edges, list)
    for n, edge in enumerate(edges):
        _require(
            isinstance(edge, dict) and isinstance(edge.get("node"), dict),
            f"{where}.edges[{n}] has no node",
        )
    return [edge["node"] for edge in edges]


def check_product(data: dict[str, Any], product_id: str) -> None:
    product = _obj(data.get("product"), "product")
    _require(product["id"] == product_id, f"product.id is {product['id']!r}, not {product_id!r}")
    _text(product.get("sku"), "product.sku")
    _text(product.get("name"), "product.name")
    price = _obj(product.get("price"), "product.price")
    _text(price.get("amount"), "product.price.amount")
    _text(price.get("currency"), "product.price.currency")


def check_users(data: dict[str, Any]) -> None:
    users = _edges(data.get("users"), "users")
    _require(len(users) == 50, f"users has {len(users)} edges, not 50")
    ids = [_text(user.get("id"), "user.id") for user in users]
    _require(len(set(ids)) == len(ids), "users has duplicate ids")
    for user in users:
        _require("@" in _text(user.get("email"), "user.email"), "user.email is not an address")


def check_nested(data: dict[str, Any]) -> None:
    users = _edges(data.get("users"), "users")
    _require(len(users) == 20, f"users has {len(users)} edges, not 20")
    order_count = 0
    for user in users:
        _text(user.get("id"), "user.id")
        _text(user.get("email"), "user.email")
        profile = _obj(user.get("profile"), "user.profile")
        _text(profile.get("displayName"), "profile.displayName")
        orders = _edges(user.get("orders"), "user.orders")
        _require(len(orders) <= 10, f"user.orders has {len(orders)} edges, more than 10")
        order_count += len(orders)
        for order in orders:
            _text(order.get("id"), "order.id")
            _require(order.get("status") in ORDER_STATUSES, f"order.status {order.get('status')}")
            total = _obj(order.get("total"), "order.total")
            _text(total.get("amount"), "order.total.amount")
            _text(total.get("currency"), "order.total.currency")
            items = order.get("items")
            _require(isinstance(items, list) and len(items) > 0, "order.items is empty")
            for value in items:
                item = _obj(value, "order.items[]")
                quantity = item.get("quantity")
                _require(isinstance(quantity, int) and quantity > 0, "item.quantity is not > 0")
                unit_price = _obj(item.get("unitPrice"), "item.unitPrice")
                _text(unit_price.get("amount"), "item.unitPrice.amount")
                product = _obj(item.get("product"), "item.product")
                for field in ("id", "sku", "name"):
                    _text(product.get(field), f"item.product.{field}")
    _require(order_count > 0, "none of the first 20 users has an order")


@dataclass(frozen=True)
class BenchQuery:
    name: str
    query: str
    check: Callable[[dict[str, Any]], None]
    variables: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            body["variables"] = self.variables
        return body


def bench_queries(product_id: str) -> list[BenchQuery]:
    return [
        BenchQuery(
            "product by id",
            PRODUCT,
            lambda data: check_product(data, product_id),
            {"id": product_id},
        ),
        BenchQuery("50 users", USERS, check_users),
        BenchQuery("nested users/orders", NESTED, check_nested),
    ]


def check_product_page(data: dict[str, Any]) -> None:
    nodes = _edges(data.get("products"), "products")
    _require(len(nodes) == 50, f"products(first: 50) returned {len(nodes)} products")
    for node in nodes:
        _text(node.get("sku"), "product.sku")


def cache_queries(product_id: str) -> list[BenchQuery]:
    """The catalogue reads measured with the cache off and on (hits)."""
    return [
        bench_queries(product_id)[0],
        BenchQuery("product page (50)", PRODUCT_PAGE, check_product_page),
    ]
