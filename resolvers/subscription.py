"""The subscription entry points: committed domain events, resolved like query results.

Authorization happens twice, by the query rules in app/auth/policy. When subscribing, a
subscription the principal could never use fails at once (UNAUTHENTICATED, FORBIDDEN, or
NOT_FOUND for one order it may not read), so a client is not left waiting for events that will
never come. Then per event, live or replayed alike: an order the subscriber may not read is
skipped without a word.

A resolver does not listen itself: it returns a `Feed`, what to listen to and how one event
becomes the field's value, and the transport (app.http.subscriptions) serves it, replaying the
store after an `after` cursor and sharing one execution per event among subscribers that asked
the same thing. Each event is resolved with fresh Loaders (one set per live event, one per
replayed batch), so the event's nested fields read current rows and never a cache that has lived
as long as the socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.auth.principal import Principal
from app.domain.events import Event, EventType
from app.errors import NotFound
from loaders import Loaders
from resolvers.context import Info
from resolvers.global_id import pk_of
from resolvers.order import Order, load_visible_order
from resolvers.product import Product, load_product

ORDER_CREATED = frozenset({EventType.ORDER_CREATED.value})
ORDER_STATUS_CHANGED = frozenset({EventType.ORDER_CANCELLED.value, EventType.ORDER_FULFILLED.value})
PRODUCT_STOCK_CHANGED = frozenset({EventType.PRODUCT_STOCK_CHANGED.value})

T = TypeVar("T")


AFTER = (
    "Resume after this cursor (`extensions.cursor` of an event received before): the events "
    "since, in order, then live ones, none missed or repeated. CURSOR_EXPIRED when older than "
    "the store keeps for replay."
)
After = Annotated[str | None, strawberry.argument(description=AFTER)]


@dataclass(frozen=True, slots=True)
class Feed(Generic[T]):
    """One subscription's events: their types, one stream or all, how an event becomes the
    field's value for a principal, and where to resume (the client's cursor, which the
    transport decodes and checks before it sends anything) if asked."""

    event_types: frozenset[str]
    stream_id: UUID | None
    # The event's value for the field, or None when this subscriber is not to see it.
    source: Callable[[Event, Loaders, Principal], Awaitable[T | None]]
    after: str | None = None

    def __aiter__(self) -> AsyncIterator[T]:
        # graphql-core only checks that a subscription resolver returned something iterable;
        # the transport takes the Feed itself rather than iterating it.
        raise TypeError("a Feed is served by app.http.subscriptions, not iterated")


async def _order(event: Event, loaders: Loaders, principal: Principal) -> Order | None:
    order = await loaders.order_by_id.load(event.stream_id)
    if order is None or not policy.may_read_order(principal, order):
        return None
    return Order.of(order)


async def _product(event: Event, loaders: Loaders, principal: Principal) -> Product | None:
    product = await loaders.product_by_id.load(event.stream_id)
    return None if product is None else Product.of(product)


def _after(after: str | None) -> str | None:
    return None if after is UNSET else after


@strawberry.type
class Subscription:
    # Each resolver is a coroutine that authorizes and then returns the feed, so a refusal is
    # an `error` message before anything is listened to.

    @strawberry.subscription(
        description="Orders as they are placed: a customer's own (orders:read); every order "
        "for clients with orders:read and admins."
    )
    async def order_created(
        self,
        info: Info,
        after: After = UNSET,
    ) -> AsyncIterable[Order]:
        policy.order_list_owner(info.context.principal)
        return Feed(ORDER_CREATED, None, _order, _after(after))

    @strawberry.subscription(
        description="Orders as they are fulfilled or cancelled: the one order `id` names, or "
        "every order the subscriber may read."
    )
    async def order_status_changed(
        self,
        info: Info,
        id: strawberry.ID | None = UNSET,
        after: After = UNSET,
    ) -> AsyncIterable[Order]:
        position = _after(after)
        if not id:
            policy.order_list_owner(info.context.principal)
            return Feed(ORDER_STATUS_CHANGED, None, _order, position)
        pk = pk_of(id, "Order")
        if await load_visible_order(info.context, pk) is None:
            raise NotFound(f"no Order has the ID {id!r}")
        return Feed(ORDER_STATUS_CHANGED, pk, _order, position)

    @strawberry.subscription(
        description="A product each time its stock changes. Public. `extensions.event.version` "
        "of each result is the product's version: a client can tell a gap from a repeat."
    )
    async def product_stock_changed(
        self,
        info: Info,
        id: strawberry.ID,
        after: After = UNSET,
    ) -> AsyncIterable[Product]:
        position = _after(after)
        pk = pk_of(id, "Product")
        if await load_product(info.context, pk) is None:
            raise NotFound(f"no Product has the ID {id!r}")
        return Feed(PRODUCT_STOCK_CHANGED, pk, _product, position)
