"""A line of an order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from app.domain import models
from app.engine import batch
from resolvers.context import Context, Info
from resolvers.global_id import to_global_id
from resolvers.lazy import Lazy, assemble
from resolvers.money import Money

if TYPE_CHECKING:
    from resolvers.product import Product


def _product(item: OrderItem, product: Product | None) -> Product:
    if product is None:
        raise _missing(item)
    return product


def _missing(item: OrderItem) -> LookupError:
    # A foreign key makes this impossible; say so loudly if it happens.
    return LookupError(f"order item {item.item.id} refers to a missing product")


async def _products(context: Context, items: Sequence[OrderItem]) -> list[Product | Exception]:
    from resolvers.product import Product

    found = await context.loaders.product_by_id.load_level([item.product_pk for item in items])
    made: dict[UUID, Product] = {}  # one object per product, however many items name it
    results: list[Product | Exception] = []
    for item, product in zip(items, found, strict=True):
        if product is None:
            results.append(_missing(item))
            continue
        shown = made.get(product.id)
        if shown is None:
            shown = made[product.id] = Product.of(product)
        results.append(shown)
    return results


@strawberry.type
class OrderItem(Lazy):
    id: strawberry.ID
    quantity: int
    unit_price: Money
    line_total: Money
    product_pk: strawberry.Private[UUID]
    item: strawberry.Private[models.OrderItem]

    # A page of orders holds hundreds of items: their IDs and amounts wait until selected.
    LAZY = {
        "id": lambda line: to_global_id("OrderItem", line.item.id),
        "unit_price": lambda line: Money.of(line.item.unit_price),
        "line_total": lambda line: Money.of(line.item.line_total),
    }

    @classmethod
    def of(cls, item: models.OrderItem) -> OrderItem:
        return assemble(cls, quantity=item.quantity, product_pk=item.product_id, item=item)

    @strawberry.field(metadata=batch(_products))
    async def product(self, info: Info) -> Annotated[Product, strawberry.lazy("resolvers.product")]:
        from resolvers.product import load_product

        return _product(self, await load_product(info.context, self.product_pk))
