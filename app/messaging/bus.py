"""The in-process event bus: named subscriptions per event type, wrapped in middlewares.

It is the one path from a stored event to its handlers: the dispatcher asks it which
subscriptions an event has (`subscriptions_for`) and hands the event to each one that still has
to run (`deliver`, through the middlewares), recording every outcome itself, so a failing
handler is retried on its own and never stops the others. The bus keeps no record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from app.domain.events import Event

Handler = Callable[[Event], Awaitable[None]]
# (event, subscription name, the rest of the chain) — a middleware may act before and after.
Middleware = Callable[[Event, str, Handler], Awaitable[None]]
Unsubscribe = Callable[[], None]

ALL_EVENTS = "*"
log = logging.getLogger("app.events")


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    event_type: str
    handler: Handler


class EventBus:
    def __init__(self, middlewares: Collection[Middleware] = ()) -> None:
        self._subscriptions: dict[str, Subscription] = {}
        self._middlewares = list(middlewares)

    def subscribe(
        self, event_type: str, handler: Handler, *, name: str | None = None
    ) -> Unsubscribe:
        """Call `handler` for every event of `event_type` (or every event, with "*").

        The name identifies the subscription in the dispatcher's bookkeeping, so it must stay
        the same across restarts for a handler not to run again for events it already handled.
        """
        key = name or f"{handler.__module__}.{handler.__qualname__}"
        if key in self._subscriptions:
            raise ValueError(f"a subscription named {key!r} already exists")
        self._subscriptions[key] = Subscription(key, event_type, handler)

        def unsubscribe() -> None:
            self._subscriptions.pop(key, None)

        return unsubscribe

    def subscriptions_for(self, event_type: str) -> list[Subscription]:
        return [s for s in self._subscriptions.values() if s.event_type in (event_type, ALL_EVENTS)]

    async def deliver(self, event: Event, subscription: Subscription) -> None:
        """Run one subscription through the middlewares; its exception is the caller's."""
        call: Handler = subscription.handler
        for middleware in reversed(self._middlewares):
            call = _wrap(middleware, subscription.name, call)
        await call(event)


def _wrap(middleware: Middleware, name: str, call_next: Handler) -> Handler:
    async def call(event: Event) -> None:
        await middleware(event, name, call_next)

    return call


async def logging_middleware(event: Event, name: str, call_next: Handler) -> None:
    started = time.perf_counter()
    try:
        await call_next(event)
    except Exception:
        log.warning("handler %s failed on %s %s", name, event.type, event.id, exc_info=True)
        raise
    log.info(
        "handler %s handled %s %s in %.1f ms",
        name,
        event.type,
        event.id,
        (time.perf_counter() - started) * 1000,
    )
