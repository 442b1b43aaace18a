"""The app built for tests: `app.main.create_app` plus what only tests may switch on, read from
the environment of a test's server process:

- `OG_FAULT_CRASH_AFTER_COMMIT=N`: the Nth unit of work that records events stops the process
  (exit status 75, EX_TEMPFAIL) right after its commit, before anything publishes its events, as
  a killed process would: without shutdown and without answering the request;
- `OG_TEST_EVENT_PROBE=1`: `GET /_test/events` lists the events this process's fanout published
  (id, type, streamId, version, sequence), oldest first. The probe is an ordinary fanout listener,
  so it sees exactly what a subscriber here would: the broker's deliveries, duplicates and order.

Served with `uvicorn tests.instrumented:create_app --factory`; `python -m app serve` never
imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.domain.events import Event, EventType
from app.http.state import AppState
from app.main import Instrumentation
from app.main import create_app as create_served_app
from app.messaging.fanout import Fanout, Listener, SubscriberOverflow

FAULT_EXIT_STATUS = 75

KEEP = 10_000


class EventProbe:
    """What this process's fanout published, kept in memory (the newest KEEP)."""

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


class CrashAfterCommits:
    def __init__(self, commits: int) -> None:
        self._left = commits

    def __call__(self, events: list[Event]) -> None:
        if not events:
            return
        self._left -= 1
        if self._left <= 0:
            os._exit(FAULT_EXIT_STATUS)


def create_app() -> Starlette:
    crash_after = int(os.environ.get("OG_FAULT_CRASH_AFTER_COMMIT", "0"))
    probe_on = os.environ.get("OG_TEST_EVENT_PROBE", "").lower() in ("1", "true", "yes")
    probes: list[EventProbe] = []

    @contextlib.asynccontextmanager
    async def running(state: AppState) -> AsyncIterator[None]:
        if not probe_on or state.fanout is None:
            yield
            return
        probe = EventProbe(state.fanout)
        probes.append(probe)
        probe.start()
        try:
            yield
        finally:
            await probe.stop()

    async def published_events(request: Request) -> Response:
        seen = probes[-1].as_json() if probes else []
        return JSONResponse({"events": seen}, headers={"Cache-Control": "no-store"})

    return create_served_app(
        instrumentation=Instrumentation(
            commit_hooks=[CrashAfterCommits(crash_after)] if crash_after > 0 else [],
            routes=[Route("/_test/events", published_events, methods=["GET"])] if probe_on else [],
            running=running,
        )
    )
