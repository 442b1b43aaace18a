"""Which cached entities a domain event changes: the tags its invalidation removes.

Entries record tags for what they read (`product:<id>` for a product, `products` for anything
that lists or counts the catalogue); the events that change those entities name the same tags.
Today only the catalogue is cached, so only product events carry tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from app.domain.events import Event, EventType

PRODUCT_LIST = "products"

_PRODUCT_EVENTS = frozenset(
    {EventType.PRODUCT_CREATED, EventType.PRODUCT_UPDATED, EventType.PRODUCT_STOCK_CHANGED}
)


def product(product_id: UUID) -> str:
    return f"product:{product_id}"


def for_events(events: Iterable[Event]) -> set[str]:
    tags: set[str] = set()
    for event in events:
        if event.type in _PRODUCT_EVENTS:
            # The product itself, and every list or count that may show it.
            tags.update((product(event.stream_id), PRODUCT_LIST))
    return tags
