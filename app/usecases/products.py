"""The catalogue's mutations, for admins."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from uuid import UUID

from app.auth import policy
from app.auth.principal import Principal
from app.domain.errors import Code, DomainError
from app.domain.models import Product
from app.domain.products import (
    MAX_STOCK,
    PriceInput,
    StockReason,
    change_product,
    check_restock,
    new_product,
    stock_ceiling_reached,
    stock_changed,
)
from app.errors import ConcurrencyConflict, NotFound
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory
from app.usecases.runner import Outcome, run, utcnow


@dataclass(frozen=True, slots=True)
class CreateProduct:
    sku: str
    name: str
    description: str | None
    price: PriceInput
    stock: int


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    """None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    price: PriceInput | None = None


async def create_product(
    uow_factory: UnitOfWorkFactory, principal: Principal, command: CreateProduct
) -> Outcome[Product]:
    policy.require_admin(principal)

    async def work(uow: UnitOfWork) -> Product:
        product, event = new_product(
            sku=command.sku,
            name=command.name,
            description=command.description,
            price=command.price,
            stock=command.stock,
            now=utcnow(),
        )
        if not await uow.products.add(product):
            raise DomainError.of(Code.SKU_TAKEN, f"Another product has SKU {product.sku}", "sku")
        await uow.record(event)
        return product

    return await run(uow_factory, work)


async def update_product(
    uow_factory: UnitOfWorkFactory, principal: Principal, product_id: UUID, command: UpdateProduct
) -> Outcome[Product]:
    """Change a product's details; a concurrent change makes this start again from a fresh read."""
    policy.require_admin(principal)

    async def work(uow: UnitOfWork) -> Product:
        product = (await uow.products.get_many([product_id])).get(product_id)
        if product is None:
            raise NotFound("No product has this ID")
        changed, event = change_product(
            product,
            name=command.name,
            description=command.description,
            price=command.price,
            now=utcnow(),
        )
        if event is None:
            return product
        version = await uow.products.save(changed, expected=product)
        if version is None:
            raise ConcurrencyConflict("another catalogue edit changed the product meanwhile")
        await uow.record(dataclasses.replace(event, version=version))
        return dataclasses.replace(changed, version=version)

    return await run(uow_factory, work)


async def restock_product(
    uow_factory: UnitOfWorkFactory, principal: Principal, product_id: UUID, quantity: int
) -> Outcome[Product]:
    policy.require_admin(principal)

    async def work(uow: UnitOfWork) -> Product:
        check_restock(quantity)
        now = utcnow()
        moved = await uow.products.move_stock(product_id, quantity, now, ceiling=MAX_STOCK)
        if moved is None:
            if product_id not in await uow.products.get_many([product_id]):
                raise NotFound("No product has this ID")
            raise stock_ceiling_reached(quantity)
        await uow.record(
            stock_changed(
                product_id=product_id,
                version=moved.version,
                delta=quantity,
                stock=moved.stock,
                reason=StockReason.RESTOCK,
                now=now,
            )
        )
        return (await uow.products.get_many([product_id]))[product_id]

    return await run(uow_factory, work)
