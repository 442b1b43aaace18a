"""An entry in an order's history."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.domain.events import Event


@strawberry.type(description="Something that happened to an order, oldest first.")
class OrderEvent:
    type: str = strawberry.field(description="OrderCreated, OrderCancelled, OrderFulfilled, …")
    version: int = strawberry.field(description="The order's version after this event.")
    occurred_at: datetime
    data: JSON

    @classmethod
    def of(cls, event: Event) -> OrderEvent:
        return cls(
            type=event.type,
            version=event.version,
            occurred_at=event.occurred_at,
            data=JSON(event.payload),
        )
