"""createProduct, updateProduct, restockProduct: their inputs and payload."""

from __future__ import annotations

from typing import TypeVar

import strawberry
from strawberry import UNSET

from app.domain.models import Product as ProductModel
from app.domain.products import PriceInput
from app.usecases import products as usecases
from app.usecases.runner import Outcome
from resolvers.context import Info
from resolvers.global_id import pk_of
from resolvers.product import Product
from resolvers.user_error import UserError, user_errors

T = TypeVar("T")


def _given(value: T | None) -> T | None:
    """UNSET (left out) and null both mean "no value" here."""
    return None if value is UNSET else value


@strawberry.input(description="An exact amount as a decimal string, and its ISO 4217 currency.")
class MoneyInput:
    amount: str
    currency: str

    def to_domain(self) -> PriceInput:
        return PriceInput(self.amount, self.currency)


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    description: str | None = UNSET
    price: MoneyInput
    stock: int


@strawberry.input(description="Fields left out (or null) stay as they are.")
class UpdateProductInput:
    name: str | None = UNSET
    description: str | None = UNSET
    price: MoneyInput | None = UNSET


@strawberry.type
class ProductPayload:
    product: Product | None
    errors: list[UserError]

    @classmethod
    def of(cls, outcome: Outcome[ProductModel]) -> ProductPayload:
        product = None if outcome.value is None else Product.of(outcome.value)
        return cls(product=product, errors=user_errors(outcome.problems))


async def create_product(info: Info, input: CreateProductInput) -> ProductPayload:
    command = usecases.CreateProduct(
        sku=input.sku,
        name=input.name,
        description=_given(input.description),
        price=input.price.to_domain(),
        stock=input.stock,
    )
    outcome = await usecases.create_product(
        info.context.unit_of_work, info.context.principal, command
    )
    return ProductPayload.of(outcome)


async def update_product(
    info: Info, id: strawberry.ID, input: UpdateProductInput
) -> ProductPayload:
    command = usecases.UpdateProduct(
        name=_given(input.name),
        description=_given(input.description),
        price=None if (price := _given(input.price)) is None else price.to_domain(),
    )
    outcome = await usecases.update_product(
        info.context.unit_of_work, info.context.principal, pk_of(id, "Product"), command
    )
    return ProductPayload.of(outcome)


async def restock_product(info: Info, id: strawberry.ID, quantity: int) -> ProductPayload:
    outcome = await usecases.restock_product(
        info.context.unit_of_work, info.context.principal, pk_of(id, "Product"), quantity
    )
    return ProductPayload.of(outcome)
