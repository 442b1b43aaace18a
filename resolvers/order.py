"""Orders, and order lists as connections ordered newest first."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from app.auth import policy
from app.domain import models
from app.errors import NotFound
from app.pagination import encode_time_cursor
from resolvers.context import Info
from resolvers.global_id import to_global_id
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


@strawberry.type
class Order(Node):
    id: strawberry.ID
    status: OrderStatus
    total: Money
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[UUID]
    user_pk: strawberry.Private[UUID]

    @classmethod
    def of(cls, order: models.Order) -> Order:
        return cls(
            id=strawberry.ID(to_global_id("Order", order.id)),
            status=OrderStatus(order.status.value),
            total=Money.of(order.total),
            created_at=order.created_at,
            updated_at=order.updated_at,
            pk=order.id,
            user_pk=order.user_id,
        )

    @strawberry.field(
        description="The order's owner, under the same rule as `user(id)`: without the right "
        "to read that user (`users:read`, unless it is oneself), null with NOT_FOUND."
    )
    async def user(self, info: Info) -> Annotated[User, strawberry.lazy("resolvers.user")] | None:
        from resolvers.user import load_visible_user

        user = await load_visible_user(info, self.user_pk)
        if user is None:
            raise NotFound("No user has this ID")
        return user

    @strawberry.field
    async def items(self, info: Info) -> list[OrderItem]:
        items = await info.context.loaders.order_items_by_order_id.load(self.pk)
        return [OrderItem.of(item) for item in items]

    @strawberry.field(description="What happened to the order, oldest first.")
    async def history(self, info: Info) -> list[OrderEvent]:
        events = await info.context.loaders.stream_events.load(self.pk)
        return [OrderEvent.of(event) for event in events]


async def load_visible_order(info: Info, pk: UUID) -> Order | None:
    """The order if the principal may read it; None (NOT_FOUND) if not, as if missing."""
    principal = info.context.principal
    policy.require_authenticated(principal)
    order = await info.context.loaders.order_by_id.load(pk)
    if order is None or not policy.may_read_order(principal, order):
        return None
    return Order.of(order)


def order_cursor(order: models.Order) -> str:
    return encode_time_cursor(CURSOR_KIND, (order.created_at, order.id))
