"""Test-only: what this process's fanout has published, for tests that watch another process.

Enabled by `OG_TEST_EVENT_PROBE=1` (refused when `APP_ENV=production`), which also serves
`GET /_test/events`. The probe is an ordinary fanout listener, so it sees exactly what a
subscriber on this process would: the broker's deliveries, duplicates and order included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from app.domain.events import Event, EventType
from app.messaging.fanout import Fanout, Listener, SubscriberOverflow

KEEP = 10_000


class EventProbe:
    def __init__(self, fanout: Fanout[Any]) -> None:
        self._fanout = fanout
        self.seen: deque[Event] = deque(maxlen=KEEP)
        self._listener: Listener[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._listener = self._fanout.listen([t.value for t in EventType], max_queued=KEEP)
            self._task = asyncio.create_task(self._collect(self._listener), name="event probe")

    async def _collect(self, listener: Listener[Any]) -> None:
        try:
            async for delivery in listener:
                self.seen.append(delivery.event)
        except SubscriberOverflow:
            self.start_over()

    def start_over(self) -> None:
        self._task = None
        self.start()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": str(event.id),
                "type": event.type,
                "streamId": str(event.stream_id),
                "version": event.version,
                "sequence": event.sequence,
            }
            for event in self.seen
        ]
