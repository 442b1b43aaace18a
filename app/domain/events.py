"""Domain events: facts in the past tense, recorded by every state change.

An event belongs to a stream (one aggregate: an order, a product, a user) and carries that
stream's version after the change, so two writers that raced to change one aggregate produce the
same (stream, version) pair and the event store refuses the second.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


class EventType(enum.StrEnum):
    USER_REGISTERED = "UserRegistered"
    PROFILE_UPDATED = "ProfileUpdated"
    USER_DISABLED = "UserDisabled"
    ORDER_CREATED = "OrderCreated"
    ORDER_CANCELLED = "OrderCancelled"
    ORDER_FULFILLED = "OrderFulfilled"
    PRODUCT_CREATED = "ProductCreated"
    PRODUCT_UPDATED = "ProductUpdated"
    PRODUCT_STOCK_CHANGED = "ProductStockChanged"
    API_KEY_CREATED = "ApiKeyCreated"
    API_KEY_REVOKED = "ApiKeyRevoked"


class StreamType(enum.StrEnum):
    USER = "User"
    ORDER = "Order"
    PRODUCT = "Product"
    API_KEY = "ApiKey"


@dataclass(frozen=True, slots=True)
class Event:
    id: UUID
    stream_id: UUID
    stream_type: str
    version: int
    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    # The store's global position; None until the event has been appended.
    sequence: int | None = None


def new_event(
    type: EventType,
    stream_type: StreamType,
    stream_id: UUID,
    version: int,
    payload: dict[str, Any],
    now: datetime,
) -> Event:
    if version < 1:
        raise ValueError(f"stream versions start at 1, not {version}")
    if now.tzinfo is None:
        raise ValueError("events need an aware timestamp")
    # A round trip through JSON proves the payload is storable and detaches it from the caller.
    detached = json.loads(json.dumps(payload, allow_nan=False))
    return Event(
        id=uuid.uuid4(),
        stream_id=stream_id,
        stream_type=stream_type.value,
        version=version,
        type=type.value,
        occurred_at=now,
        payload=detached,
    )


def user_registered(user_id: UUID, email: str, display_name: str, now: datetime) -> Event:
    """The first event of a user's stream; the welcome email reads `email` and `displayName`."""
    payload = {"email": email, "displayName": display_name}
    return new_event(EventType.USER_REGISTERED, StreamType.USER, user_id, 1, payload, now)
