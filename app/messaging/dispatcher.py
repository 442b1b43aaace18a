"""The outbox dispatcher: runs side-effect handlers for stored events, after commit.

Events reach the store in the transaction that made them, so a side effect is never lost and
never runs for work that rolled back. After a commit the unit of work wakes the dispatcher; it
also polls, which is how it catches up on start-up and picks up retries and other processes'
events. Delivery is at least once: each event is leased to one dispatcher at a time, one event
at a time, and the lease is renewed before each handler, so with handlers inside their time
limit no two dispatchers run a handler for one event side by side. Every handler's attempt is
recorded before it runs and its outcome as soon as it is known; a handler that has succeeded is
never run for that event again. A process that dies mid-handler leaves the attempt unfinished,
and the handler runs again after the lease ends: handlers must be idempotent by event id (the
shipped ones use it as the email's Message-ID). A failing handler is retried with exponential
backoff up to a limit; it never fails the mutation that raised the event, nor other handlers.
Events of types no handler subscribes to are marked handled while claiming, at no extra cost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.db.engine import Database
from app.domain.events import Event
from app.errors import ServiceUnavailable
from app.messaging.bus import EventBus, Subscription
from app.messaging.loop import WakeableLoop
from app.repositories import events as store

log = logging.getLogger("app.dispatcher")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher(WakeableLoop):
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        worker: str | None = None,
        batch: int = 50,
        handler_timeout: float = 30.0,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 8,
        first_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=15),
        poll_interval: float = 2.0,
        clock: Clock = _utcnow,
    ) -> None:
        # The lease, renewed before each handler, must outlast that handler, or a slow handler's
        # event could be claimed by another dispatcher while it runs.
        if lease.total_seconds() <= handler_timeout:
            raise ValueError("the lease must be longer than the handler time limit")
        self._db = db
        self._bus = bus
        self.worker = worker or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._batch = batch
        self._handler_timeout = handler_timeout
        self._lease = lease
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._clock = clock
        super().__init__(name=f"dispatcher {self.worker}", poll_interval=poll_interval)

    async def round(self) -> None:
        try:
            await self.drain()
        except ServiceUnavailable as error:  # the database is away; the next round retries
            log.warning(
                "dispatching events deferred: %s; retrying in %.1f s",
                error.message,
                self._poll_interval,
            )
        except Exception:  # a bug: loud, but the loop keeps going
            log.exception("dispatching events failed; retrying in %.1f s", self._poll_interval)

    async def drain(self) -> int:
        """Handle every event that is due now; the number of events taken."""
        total = 0
        while not self._stopping and (taken := await self.run_once()):
            total += taken
        return total

    async def run_once(self) -> int:
        """Take up to `batch` due events, leasing each just before its handlers run; the number
        taken (handled, or settled for want of handlers)."""
        taken = 0
        while taken < self._batch and not self._stopping:
            now = self._clock()
            async with self._db.write() as conn:
                claim = await store.claim_next(
                    conn,
                    self.worker,
                    now,
                    now + self._lease,
                    lambda event_type: bool(self._bus.subscriptions_for(event_type)),
                    self._batch - taken,
                )
            taken += claim.settled
            if claim.event is None:
                break
            taken += 1
            await self._dispatch(claim.event)
        return taken

    async def _dispatch(self, event: Event) -> None:
        async with self._db.read() as conn:
            runs = await store.runs_for(conn, event.id)
        retry_at: datetime | None = None
        for subscription in self._bus.subscriptions_for(event.type):
            run = runs.get(subscription.name)
            if run is not None and run.status != "retrying":
                continue  # done, or given up: never again for this event
            now = self._clock()
            if run is not None and run.next_attempt_at is not None and run.next_attempt_at > now:
                retry_at = _earliest(retry_at, run.next_attempt_at)
                continue
            attempts = (run.attempts if run is not None else 0) + 1
            async with self._db.write() as conn:
                leased = await store.start_attempt(
                    conn,
                    event,
                    self.worker,
                    subscription.name,
                    attempts=attempts,
                    lease_until=now + self._lease,
                    now=now,
                )
            if not leased:
                log.warning("lease on event %s passed to another dispatcher", event.id)
                return
            next_at = await self._attempt(event, subscription, attempts)
            if next_at is not None:
                retry_at = _earliest(retry_at, next_at)
        now = self._clock()
        async with self._db.write() as conn:
            kept = await store.release(
                conn,
                event,
                self.worker,
                handled_at=now if retry_at is None else None,
                retry_at=retry_at,
            )
        if not kept:
            log.warning("lease on event %s expired while its handlers ran", event.id)

    async def _attempt(
        self, event: Event, subscription: Subscription, attempts: int
    ) -> datetime | None:
        """Run one handler once and record how it went; when to try again, if it should be."""
        error: str | None = None
        try:
            await asyncio.wait_for(self._bus.deliver(event, subscription), self._handler_timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        now = self._clock()
        next_at: datetime | None = None
        if error is None:
            status = "done"
        elif attempts >= self._max_attempts:
            status = "failed"
            log.error(
                "handler %s gave up on %s %s after %d attempts: %s",
                subscription.name,
                event.type,
                event.id,
                attempts,
                error,
            )
        else:
            status = "retrying"
            next_at = now + self.backoff(attempts)
        async with self._db.write() as conn:
            await store.record_run(
                conn,
                event.id,
                subscription.name,
                status=status,
                attempts=attempts,
                next_attempt_at=next_at,
                error=error,
                now=now,
            )
        return next_at

    def backoff(self, attempts: int) -> timedelta:
        """1 s, 2 s, 4 s, … up to the maximum: a flaky mail server gets room to recover."""
        return min(self._first_delay * (1 << min(attempts - 1, 30)), self._max_delay)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current
