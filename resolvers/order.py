"""Orders, and order lists as connections ordered newest first."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from app.auth import policy
from app.domain import models
from app.engine import batch
from app.errors import NotFound
from app.pagination import encode_time_cursor
from resolvers.context import Context, Info
from resolvers.global_id import to_global_id
from resolvers.lazy import Lazy, assemble
from resolvers.money import Money
from resolvers.node import Node
from resolvers.order_event import OrderEvent
from resolvers.order_item import OrderItem

if TYPE_CHECKING:
    from resolvers.user import User

CURSOR_KIND = "order"


@strawberry.enum
class OrderStatus(enum.Enum):
    PLACED = "PLACED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"

    def to_domain(self) -> models.OrderStatus:
        return models.OrderStatus(self.value)


_STATUSES = {status: OrderStatus(status.value) for status in models.OrderStatus}


def _hidden() -> NotFound:
    # The same answer as `user(id)` for a user the principal may not read (or a missing one).
    return NotFound("No user has this ID")


async def _users(context: Context, orders: Sequence[Order]) -> list[User | Exception]:
    from resolvers.user import User

    principal = context.principal
    readable = [o for o in orders if policy.may_read_user(principal, o.user_pk)]
    loaded = await context.loaders.user_by_id.load_level([order.user_pk for order in readable])
    by_order = {order.pk: user for order, user in zip(readable, loaded, strict=True)}
    made: dict[UUID, User] = {}  # one object per user, however many orders name them
    results: list[User | Exception] = []
    for order in orders:
        user = by_order.get(order.pk)
        if user is None:
            results.append(_hidden())
            continue
        shown = made.get(user.id)
        if shown is None:
            shown = made[user.id] = User.of(user)
        results.append(shown)
    return results


async def _items(context: Context, orders: Sequence[Order]) -> list[list[OrderItem]]:
    found = await context.loaders.order_items_by_order_id.load_level([o.pk for o in orders])
    return [[OrderItem.of(item) for item in items] for items in found]


async def _history(context: Context, orders: Sequence[Order]) -> list[list[OrderEvent]]:
    found = await context.loaders.stream_events.load_level([order.pk for order in orders])
    return [[OrderEvent.of(event) for event in events] for events in found]


@strawberry.type
class Order(Node, Lazy):
    id: strawberry.ID
    status: OrderStatus
    total: Money
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[UUID]
    user_pk: strawberry.Private[UUID]
    order: strawberry.Private[models.Order]

    LAZY = {
        "id": lambda order: to_global_id("Order", order.pk),
        "total": lambda order: Money.of(order.order.total),
    }

    @classmethod
    def of(cls, order: models.Order) -> Order:
        return assemble(
            cls,
            status=_STATUSES[order.status],
            created_at=order.created_at,
            updated_at=order.updated_at,
            pk=order.id,
            user_pk=order.user_id,
            order=order,
        )

    @strawberry.field(
        description="The order's owner, under the same rule as `user(id)`: without the right "
        "to read that user (`users:read`, unless it is oneself), null with NOT_FOUND.",
        metadata=batch(_users),
    )
    async def user(self, info: Info) -> Annotated[User, strawberry.lazy("resolvers.user")] | None:
        from resolvers.user import load_visible_user

        user = await load_visible_user(info.context, self.user_pk)
        if user is None:
            raise _hidden()
        return user

    @strawberry.field(metadata=batch(_items))
    async def items(self, info: Info) -> list[OrderItem]:
        items = await info.context.loaders.order_items_by_order_id.load(self.pk)
        return [OrderItem.of(item) for item in items]

    @strawberry.field(
        description="What happened to the order, oldest first.", metadata=batch(_history)
    )
    async def history(self, info: Info) -> list[OrderEvent]:
        events = await info.context.loaders.stream_events.load(self.pk)
        return [OrderEvent.of(event) for event in events]


async def load_visible_order(context: Context, pk: UUID) -> Order | None:
    """The order if the principal may read it; None (NOT_FOUND) if not, as if missing."""
    principal = context.principal
    policy.require_authenticated(principal)
    order = await context.loaders.order_by_id.load(pk)
    if order is None or not policy.may_read_order(principal, order):
        return None
    return Order.of(order)


def order_cursor(order: models.Order) -> str:
    return encode_time_cursor(CURSOR_KIND, (order.created_at, order.id))
