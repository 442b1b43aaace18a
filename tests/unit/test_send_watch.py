"""The send watch: one task per process notices an event send that has waited too long, instead
of a timer per send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from app.http.subscriptions import SendWatch


async def _send(watch: SendWatch, waiting: Awaitable[object]) -> str:
    task = watch.start()
    try:
        await waiting
    except asyncio.CancelledError:
        if watch.expired(task):
            return "too slow"
        raise
    finally:
        watch.done(task)
    return "sent"


async def test_a_send_still_waiting_past_the_lag_is_too_slow_and_a_prompt_one_is_not() -> None:
    watch = SendWatch(max_lag=0.05)
    try:
        prompt = asyncio.create_task(_send(watch, asyncio.sleep(0)))
        stuck = asyncio.create_task(_send(watch, asyncio.Event().wait()))
        assert await prompt == "sent"
        assert await asyncio.wait_for(stuck, 10) == "too slow"
        assert stuck.cancelling() == 0, "the watch's cancellation is withdrawn"
        # A task cancelled by someone else is cancelled, not too slow.
        other = asyncio.create_task(_send(watch, asyncio.Event().wait()))
        await asyncio.sleep(0)
        other.cancel()
        done, _ = await asyncio.wait([other], timeout=10)
        assert other in done
        assert other.cancelled()
    finally:
        watch.close()
