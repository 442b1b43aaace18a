"""Handing committed events to this process's live subscribers.

A broker (in process, or Redis Streams across processes) calls `Fanout.publish` once per event
it receives, in order. Listeners are indexed by event type and stream (one stream, or all), so an
event is offered only to those listening to it. Every listener gets the event through its own
bounded queue, so a slow
subscriber can neither slow the others nor grow memory without bound: when its queue is full
it is marked overflowed and its next read raises `SubscriberOverflow`. Whatever `per_event`
builds (the GraphQL layer's fresh DataLoaders) is built once per event
and shared by every listener that receives it, so no cache outlives the event it was made for.

Exactly once on the wire: events come numbered with their store position, always increasing in
the broker's order, so an event at or before the last position published here is one a relay
retry appended again, and is dropped before any listener sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from app.domain.events import Event

T = TypeVar("T")


class SubscriberOverflow(Exception):
    """The listener fell further behind than its queue allows."""


@dataclass(frozen=True, slots=True)
class Delivery(Generic[T]):
    event: Event
    shared: T


class Listener(Generic[T]):
    def __init__(
        self,
        fanout: Fanout[T],
        event_types: frozenset[str],
        max_queued: int,
        stream_id: UUID | None = None,
    ) -> None:
        self._fanout = fanout
        self.event_types = event_types
        self.stream_id = stream_id
        self._queue: asyncio.Queue[Delivery[T] | None] = asyncio.Queue(maxsize=max_queued)
        self.overflowed = False
        self.closed = False

    def __aiter__(self) -> Listener[T]:
        return self

    async def __anext__(self) -> Delivery[T]:
        if self.overflowed:
            raise SubscriberOverflow("the subscriber fell too far behind")
        if self.closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if self.overflowed:
            raise SubscriberOverflow("the subscriber fell too far behind")
        if item is None:
            raise StopAsyncIteration
        return item

    def offer(self, delivery: Delivery[T]) -> None:
        if self.closed or self.overflowed:
            return
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.overflowed = True
            self._fanout.remove(self)
            self._wake()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout.remove(self)
            self._wake()

    def _wake(self) -> None:
        # A reader blocked on get() must notice; make room for the wake-up if need be.
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()


class Fanout(Generic[T]):
    def __init__(self, per_event: Callable[[Event], T]) -> None:
        self._per_event = per_event
        # Listeners by (event type, stream or None for every stream): an event is offered to
        # those listening to it, never looked at by the others (thousands of subscriptions to
        # other streams cost it nothing).
        self._index: dict[tuple[str, UUID | None], dict[Listener[T], None]] = {}
        self._count = 0
        # The store position of the newest event published here (None: none yet).
        self.last_position: int | None = None

    def listen(
        self, event_types: Collection[str], max_queued: int = 100, stream_id: UUID | None = None
    ) -> Listener[T]:
        """A listener of these event types, of one stream or (None) of all."""
        listener = Listener(self, frozenset(event_types), max_queued, stream_id)
        for event_type in listener.event_types:
            self._index.setdefault((event_type, stream_id), {})[listener] = None
        self._count += 1
        return listener

    def remove(self, listener: Listener[T]) -> None:
        removed = False
        for event_type in listener.event_types:
            key = (event_type, listener.stream_id)
            listeners = self._index.get(key)
            if listeners is not None and listeners.pop(listener, 0) is None:
                removed = True
                if not listeners:
                    del self._index[key]
        if removed:
            self._count -= 1

    @property
    def listener_count(self) -> int:
        return self._count

    def publish(self, event: Event) -> int:
        """Offer the event to every listener of its type; the number it was offered to."""
        position = event.position
        if position is not None:
            if self.last_position is not None and position <= self.last_position:
                return 0  # appended again by a relay retry: already delivered
            self.last_position = position
        every = self._index.get((event.type, None))
        one = self._index.get((event.type, event.stream_id))
        if every is None and one is None:
            return 0
        # A copy: offering may remove an overflowing listener from the index.
        targets = [*(every or ()), *(one or ())]
        delivery = Delivery(event, self._per_event(event))
        for listener in targets:
            listener.offer(delivery)
        return len(targets)
