"""A line of an order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from app.domain import models
from resolvers.context import Info
from resolvers.global_id import to_global_id
from resolvers.money import Money

if TYPE_CHECKING:
    from resolvers.product import Product


@strawberry.type
class OrderItem:
    id: strawberry.ID
    quantity: int
    unit_price: Money
    line_total: Money
    product_pk: strawberry.Private[UUID]

    @classmethod
    def of(cls, item: models.OrderItem) -> OrderItem:
        return cls(
            id=strawberry.ID(to_global_id("OrderItem", item.id)),
            quantity=item.quantity,
            unit_price=Money.of(item.unit_price),
            line_total=Money.of(item.line_total),
            product_pk=item.product_id,
        )

    @strawberry.field
    async def product(self, info: Info) -> Annotated[Product, strawberry.lazy("resolvers.product")]:
        from resolvers.product import load_product

        product = await load_product(info, self.product_pk)
        if product is None:  # a foreign key makes this impossible; say so loudly if it happens
            raise LookupError(f"order item {self.id} refers to a missing product")
        return product
