"""Domain events drive the cache's invalidation, in the writing process and in every other one.

The writing process invalidates right after its commit, before its mutation answers and before it
wakes its relay to publish the events, so neither it nor anyone reading L2 after that sees the old
value.
Every process (the writer included) invalidates again when the broker delivers the events: that
is how other processes' L1 learns of the change, and how writes made without a cache (a one-off
command) still reach L2.
"""

from __future__ import annotations

import asyncio
import logging

from app.cache import tags as cache_tags
from app.cache.manager import CacheManager
from app.domain.events import Event

log = logging.getLogger("app.cache")


class CacheInvalidation:
    def __init__(self, manager: CacheManager) -> None:
        self.manager = manager
        self._tasks: set[asyncio.Task[None]] = set()

    async def after_commit(self, events: list[Event]) -> None:
        tags = cache_tags.for_events(events)
        if tags:
            await self.manager.invalidate(tags)

    def delivered(self, event: Event) -> None:
        """The broker's hook, called before the event reaches this process's subscribers.

        L1 is invalidated at once, so a subscriber resolving the changed product reads it anew;
        L2 (and L1 again, in case a reader re-filled it from L2 meanwhile) in the background.
        """
        tags = cache_tags.for_events([event])
        if not tags or not self.manager.enabled:
            return
        self.manager.invalidate_local(tags)
        task = asyncio.create_task(self.manager.invalidate(tags), name="cache invalidation")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cache invalidation failed", exc_info=task.exception())

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
