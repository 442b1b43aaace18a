"""A background loop woken after commits, polling as a fallback, and stopped by asking.

The dispatcher and the relay both run one: work right after this process's commits, catch up
on a timer (other processes' commits, retries, a crash or outage), and stop between rounds.
Stopping asks rather than cancels, because a cancellation landing mid-statement strands the
pooled connection; only a loop still busy after the grace period is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from app.domain.events import Event


class WakeableLoop(ABC):
    def __init__(self, *, name: str, poll_interval: float) -> None:
        self._name = name
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self, events: list[Event] | None = None) -> None:
        """Called after a commit; cheap, and safe to call when not running."""
        self._wakeup.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wakeup.set()  # catch up on whatever the store holds from before this start
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop after the round running now; cancel only a loop still busy after `grace`."""
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            await self.round()

    @abstractmethod
    async def round(self) -> None:
        """One round of work; it must not raise (log and let the next round retry)."""
