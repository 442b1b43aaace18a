"""Products, and the catalogue as a connection ordered by SKU."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.domain import models
from app.pagination import encode_text_cursor
from resolvers.context import Context
from resolvers.global_id import to_global_id
from resolvers.lazy import Lazy, assemble
from resolvers.money import Money
from resolvers.node import Node

CURSOR_KIND = "product"


@strawberry.type
class Product(Node, Lazy):
    id: strawberry.ID
    sku: str
    name: str
    description: str
    price: Money
    stock: int
    pk: strawberry.Private[UUID]
    model: strawberry.Private[models.Product]

    LAZY = {
        "id": lambda product: to_global_id("Product", product.pk),
        "price": lambda product: Money.of(product.model.price),
    }

    @classmethod
    def of(cls, product: models.Product) -> Product:
        return assemble(
            cls,
            sku=product.sku,
            name=product.name,
            description=product.description,
            stock=product.stock,
            pk=product.id,
            model=product,
        )


async def load_product(context: Context, pk: UUID) -> Product | None:
    product = await context.loaders.product_by_id.load(pk)
    return None if product is None else Product.of(product)


def product_cursor(product: models.Product) -> str:
    return encode_text_cursor(CURSOR_KIND, product.sku)
