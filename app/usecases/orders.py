"""Placing, cancelling and fulfilling orders."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from app.auth import policy
from app.auth.principal import Principal
from app.auth.scopes import ORDERS_FULFILL, ORDERS_WRITE
from app.domain.errors import Code, DomainError
from app.domain.events import Event
from app.domain.models import Order, OrderStatus
from app.domain.orders import (
    OrderLine,
    check_lines,
    insufficient_stock,
    lines_fingerprint_source,
    place_order,
    transition,
)
from app.domain.products import StockReason, stock_changed
from app.errors import ConcurrencyConflict, NotFound
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory
from app.usecases.runner import Outcome, run, utcnow

MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class CreateOrder:
    lines: Sequence[OrderLine]
    idempotency_key: str | None = None


def fingerprint(lines: Sequence[OrderLine]) -> str:
    canonical = json.dumps(lines_fingerprint_source(lines), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_order(
    uow_factory: UnitOfWorkFactory, principal: Principal, command: CreateOrder
) -> Outcome[Order]:
    """Place an order for the signed-in user, taking the stock in the same transaction.

    Stock is taken line by line in product-ID order, so two orders over the same products lock
    them in the same order and cannot deadlock. With an idempotency key, a repeat of a request
    returns the order the first one placed instead of placing another.
    """
    policy.require_scope(principal, ORDERS_WRITE)
    user_id = policy.require_signed_in(principal)
    key = command.idempotency_key
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        return Outcome(
            problems=DomainError.of(
                Code.BAD_USER_INPUT,
                f"An idempotency key has 1 to {MAX_KEY_LENGTH} characters",
                "idempotencyKey",
            ).problems
        )
    lines = list(command.lines)

    async def work(uow: UnitOfWork) -> Order:
        check_lines(lines)
        now = utcnow()
        order_id = uuid4()
        if key is not None:
            wanted = fingerprint(lines)
            first = await uow.idempotency.claim(user_id, key, wanted, order_id, now)
            if first is not None:
                if first.fingerprint != wanted:
                    raise DomainError.of(
                        Code.IDEMPOTENCY_KEY_REUSED,
                        "This idempotency key was used for a different order",
                        "idempotencyKey",
                    )
                existing = await uow.orders.get(first.order_id)
                if existing is None:  # the key's order was deleted with it (ON DELETE CASCADE)
                    raise AssertionError("an idempotency key outlived its order")
                return existing
        products = await uow.products.get_many([line.product_id for line in lines])
        placed = place_order(
            user_id=user_id, lines=lines, products=products, now=now, order_id=order_id
        )
        stock_events: list[Event] = []
        for index, line in sorted(enumerate(lines), key=lambda pair: pair[1].product_id):
            product = products[line.product_id]
            moved = await uow.products.move_stock(line.product_id, -line.quantity, now)
            if moved is None:
                raise DomainError(insufficient_stock(index, product.sku))
            if moved.price != product.price:
                raise ConcurrencyConflict(f"the price of {product.sku} changed while ordering")
            stock_events.append(
                stock_changed(
                    product_id=line.product_id,
                    version=moved.version,
                    delta=-line.quantity,
                    stock=moved.stock,
                    reason=StockReason.ORDER,
                    now=now,
                    order_id=order_id,
                )
            )
        await uow.orders.add(placed.order, placed.items)
        await uow.record(placed.event, *stock_events)
        return placed.order

    return await run(uow_factory, work)


async def _change_status(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    order_id: UUID,
    target: OrderStatus,
) -> Outcome[Order]:
    async def work(uow: UnitOfWork) -> Order:
        order = await uow.orders.get(order_id)
        if order is None:
            raise NotFound("No order has this ID")
        if target is OrderStatus.CANCELLED:
            policy.require_order_owner_or_admin(principal, order, ORDERS_WRITE)
        elif not policy.may_read_order(principal, order):
            # Fulfilling also needs read access to the order (the payload returns it); without
            # it the order does not exist, exactly as when reading it.
            raise NotFound("No order has this ID")
        now = utcnow()
        version = await uow.events.last_version(order.id)
        changed, event = transition(order, target, stream_version=version, now=now)
        if not await uow.orders.change_status(changed, expected=order.status):
            raise ConcurrencyConflict("the order changed while this request ran")
        await uow.record(event)
        if target is OrderStatus.CANCELLED:
            await _return_stock(uow, order.id, now)
        return changed

    return await run(uow_factory, work)


async def _return_stock(uow: UnitOfWork, order_id: UUID, now: datetime) -> None:
    """A cancelled order's items go back on the shelf, in product-ID order like any stock move."""
    items = await uow.orders.items(order_id)
    for item in sorted(items, key=lambda i: i.product_id):
        moved = await uow.products.move_stock(item.product_id, item.quantity, now)
        if moved is None:  # a foreign key keeps the product; stock only grows here
            raise AssertionError(f"could not return stock to product {item.product_id}")
        await uow.record(
            stock_changed(
                product_id=item.product_id,
                version=moved.version,
                delta=item.quantity,
                stock=moved.stock,
                reason=StockReason.CANCELLATION,
                now=now,
                order_id=order_id,
            )
        )


async def cancel_order(
    uow_factory: UnitOfWorkFactory, principal: Principal, order_id: UUID
) -> Outcome[Order]:
    """Cancel a placed order (its owner with orders:write, or an admin) and restock its items.

    The scope is checked before the order is looked up, so a principal without it learns
    nothing about which orders exist.
    """
    policy.require_scope(principal, ORDERS_WRITE)
    return await _change_status(uow_factory, principal, order_id, OrderStatus.CANCELLED)


async def fulfill_order(
    uow_factory: UnitOfWorkFactory, principal: Principal, order_id: UUID
) -> Outcome[Order]:
    """Fulfil a placed order: needs orders:fulfill and read access to the order (orders:read;
    admins have both). An order the principal may not read is NOT_FOUND, as for reads."""
    policy.require_scope(principal, ORDERS_FULFILL)
    return await _change_status(uow_factory, principal, order_id, OrderStatus.FULFILLED)
