"""The subscription entry points: committed domain events, resolved like query results.

Authorization happens twice, by the query rules in app/auth/policy. When subscribing, a
subscription the principal could never use fails at once (UNAUTHENTICATED, FORBIDDEN, or
NOT_FOUND for one order it may not read), so a client is not left waiting for events that will
never come. Then per event: an order the subscriber may not read is skipped without a word.

Each event arrives with its own fresh Loaders, shared by every subscriber it reaches in this
process. The resolver points the operation's context at them before yielding, so the event's
nested fields (items, user, history) read current rows through one batch per event and never
through a cache that has lived as long as the socket. Loaders borrow a connection per batch; a
waiting subscription holds none.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.auth.principal import Principal
from app.domain import models
from app.domain.events import EventType
from app.errors import BadUserInput, NotFound
from resolvers.context import EventDelivery, Info
from resolvers.global_id import pk_of
from resolvers.order import Order, load_visible_order
from resolvers.product import Product, load_product

ORDER_CREATED = (EventType.ORDER_CREATED.value,)
ORDER_STATUS_CHANGED = (EventType.ORDER_CANCELLED.value, EventType.ORDER_FULFILLED.value)
PRODUCT_STOCK_CHANGED = (EventType.PRODUCT_STOCK_CHANGED.value,)


async def _deliveries(
    info: Info, event_types: Collection[str]
) -> AsyncGenerator[EventDelivery, None]:
    """This process's committed events of these types, until the client stops listening."""
    listen = info.context.listen
    if listen is None:
        raise BadUserInput("Subscriptions are served over the WebSocket transport only")
    listener = listen(event_types)
    try:
        async for delivery in listener:
            yield delivery
    finally:
        listener.close()


async def _orders(
    info: Info, event_types: Collection[str], wanted: Callable[[UUID], bool]
) -> AsyncGenerator[Order, None]:
    principal: Principal = info.context.principal
    async for delivery in _deliveries(info, event_types):
        if not wanted(delivery.event.stream_id):
            continue
        order: models.Order | None = await delivery.shared.order_by_id.load(
            delivery.event.stream_id
        )
        if order is None or not policy.may_read_order(principal, order):
            continue
        info.context.loaders = delivery.shared
        yield Order.of(order)


async def _product(info: Info, pk: UUID) -> AsyncGenerator[Product, None]:
    async for delivery in _deliveries(info, PRODUCT_STOCK_CHANGED):
        if delivery.event.stream_id != pk:
            continue
        product = await delivery.shared.product_by_id.load(pk)
        if product is None:
            continue
        info.context.loaders = delivery.shared
        yield Product.of(product)


def _any(_: UUID) -> bool:
    return True


@strawberry.type
class Subscription:
    # Each resolver is a coroutine that authorizes and then returns the event stream, so a
    # refusal is an `error` message before anything is listened to.

    @strawberry.subscription(
        description="Orders as they are placed: a customer's own (orders:read); every order "
        "for clients with orders:read and admins."
    )
    async def order_created(self, info: Info) -> AsyncGenerator[Order, None]:
        policy.order_list_owner(info.context.principal)
        return _orders(info, ORDER_CREATED, _any)

    @strawberry.subscription(
        description="Orders as they are fulfilled or cancelled: the one order `id` names, or "
        "every order the subscriber may read."
    )
    async def order_status_changed(
        self, info: Info, id: strawberry.ID | None = UNSET
    ) -> AsyncGenerator[Order, None]:
        if not id:
            policy.order_list_owner(info.context.principal)
            return _orders(info, ORDER_STATUS_CHANGED, _any)
        pk = pk_of(id, "Order")
        if await load_visible_order(info, pk) is None:
            raise NotFound(f"no Order has the ID {id!r}")
        return _orders(info, ORDER_STATUS_CHANGED, lambda stream_id: stream_id == pk)

    @strawberry.subscription(description="A product each time its stock changes. Public.")
    async def product_stock_changed(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[Product, None]:
        pk = pk_of(id, "Product")
        if await load_product(info, pk) is None:
            raise NotFound(f"no Product has the ID {id!r}")
        return _product(info, pk)
