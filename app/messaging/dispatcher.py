"""The outbox dispatcher: runs side-effect handlers for stored events, after commit.

Events reach the store in the transaction that made them, so a side effect is never lost and
never runs for work that rolled back. After a commit the unit of work wakes the dispatcher; it
also polls, which is how it catches up on start-up and picks up retries and other processes'
events. Events are handled side by side, up to `concurrency` at once (EVENTS_DISPATCH_CONCURRENCY),
so a slow handler (an SMTP round trip) does not hold up every event behind it; the handlers of one
event still run one after another. Delivery is at least once: each event is leased to one
dispatcher at a time, only when a turn to handle it is free (so a lease never covers waiting),
and the lease is renewed before each handler, so with handlers inside their time limit no two
dispatchers run a handler for one event side by side. Every handler's attempt is
recorded before it runs and its outcome as soon as it is known; a handler that has succeeded is
never run for that event again. A process that dies mid-handler leaves the attempt unfinished,
and the handler runs again after the lease ends: handlers must be idempotent by event id (the
shipped ones use it as the email's Message-ID). A failing handler is retried with exponential
backoff up to a limit; it never fails the mutation that raised the event, nor other handlers.
Events of types no handler subscribes to are marked handled while claiming, at no extra cost.

The bookkeeping is per claim, not per event: the events of one claim have their runs read in one
statement, their handlers' attempts started (leases renewed) in one transaction, and their
outcomes recorded with their release in another: a few transactions a claim rather than a read
and three write transactions an event, which at 100 events a second were most of its cost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.domain.events import Event
from app.errors import ServiceUnavailable
from app.messaging.bus import EventBus, Subscription
from app.messaging.loop import WakeableLoop
from app.repositories import events as store

log = logging.getLogger("app.dispatcher")

Clock = Callable[[], datetime]

# Waits (seconds) before trying again to record what a step's handlers did, when the database
# is briefly away or busy; past the last, the events wait out their lease and are taken again.
BOOKKEEPING_RETRIES = (0.5, 1.0, 2.0, 4.0)


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
        concurrency: int = 32,
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
        self._concurrency = max(1, concurrency)
        self._handler_timeout = handler_timeout
        self._lease = lease
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._clock = clock
        self._caught_up = False  # the last claim saw every event due then
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
        while not self._stopping:
            taken = await self.run_once()
            total += taken
            if not taken or self._caught_up:
                break
        return total

    async def run_once(self) -> int:
        """Take up to `batch` due events, leasing each only when a turn to handle it is free;
        the number taken (handled, or settled for want of handlers)."""
        taken = 0
        self._caught_up = False
        running: dict[asyncio.Task[None], int] = {}  # a claim's handling -> its events
        try:
            while taken < self._batch and not self._stopping:
                free = self._concurrency - sum(running.values())
                if free <= 0:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        del running[task]
                    _log_failures(done)
                    continue
                now = self._clock()
                async with self._db.write() as conn:
                    claim = await store.claim_due(
                        conn,
                        self.worker,
                        now,
                        now + self._lease,
                        lambda event_type: bool(self._bus.subscriptions_for(event_type)),
                        self._batch - taken,
                        min(free, self._batch - taken),
                    )
                    if claim.events:  # their first handlers start in the claiming transaction
                        runs = await store.runs_for(conn, [event.id for event in claim.events])
                        batch = _Batch(claim.events, self._bus, runs)
                        started = await self._record(conn, batch, self._plan(batch, now), now)
                taken += claim.settled + len(claim.events)
                if claim.events:
                    running[asyncio.create_task(self._handle(batch, started))] = len(claim.events)
                if not claim.events or not claim.more:
                    self._caught_up = True  # nothing else is due: no claim to find nothing
                    break
        finally:
            if running:
                done, _ = await asyncio.wait(running)
                _log_failures(done)
        return taken

    async def _handle(self, batch: _Batch, started: list[store.Attempt]) -> None:
        """Run a claim's handlers, side by side across events and one after another within an
        event, a step at a time: each step's attempts run together, then one transaction
        records how they went and starts the next step's."""
        while started:
            batch.outcomes = list(
                await asyncio.gather(*(self._attempt(a, batch.due[a.event.id]) for a in started))
            )
            for outcome in batch.outcomes:
                if outcome.next_attempt_at is not None:
                    batch.retry_at[outcome.event_id] = _earliest(
                        batch.retry_at.get(outcome.event_id), outcome.next_attempt_at
                    )
            now = self._clock()
            plan = self._plan(batch, now)
            for delay in (*BOOKKEEPING_RETRIES, None):
                # The handlers have run: what they did is worth a few tries to record (else they
                # run again once the leases end), while the database is briefly away or busy.
                try:
                    async with self._db.write() as conn:
                        started = await self._record(conn, batch, plan, now)
                    break
                except ServiceUnavailable as error:
                    if delay is None or self._stopping:
                        raise
                    log.warning("recording handler runs deferred %.1f s: %s", delay, error.message)
                    await asyncio.sleep(delay)

    def _plan(self, batch: _Batch, now: datetime) -> _Plan:
        """Each of the batch's events' next handler to run now, or its release when none is."""
        plan = _Plan()
        batch.due = {}
        for event in batch.events:
            step = self._next(
                event, batch.pending[event.id], batch.runs[event.id], batch.retry_at, now
            )
            if step is not None:
                plan.due.append(step[0])
                batch.due[event.id] = step[1]
            else:
                later = batch.retry_at.get(event.id)
                plan.finished.append(store.Release(event, now if later is None else None, later))
        return plan

    async def _record(
        self, conn: AsyncConnection, batch: _Batch, plan: _Plan, now: datetime
    ) -> list[store.Attempt]:
        """In `conn`'s transaction: record the last step's outcomes, release the events with no
        handler left to run now, and start (renewing the lease) each other event's next one;
        the attempts started. Run again after a failed transaction, it does the same."""
        if batch.outcomes or plan.finished:
            lost = await store.finish_attempts(
                conn, self.worker, batch.outcomes, plan.finished, now=now
            )
            for event in lost:
                log.warning("lease on event %s expired while its handlers ran", event.id)
        started = await store.start_attempts(
            conn, self.worker, plan.due, lease_until=now + self._lease, now=now
        )
        for event_id in batch.due.keys() - {attempt.event.id for attempt in started}:
            log.warning("lease on event %s passed to another dispatcher", event_id)
        batch.events = [attempt.event for attempt in started]
        batch.outcomes = []
        return started

    def _next(
        self,
        event: Event,
        pending: list[Subscription],
        runs: dict[str, store.HandlerRun],
        retry_at: dict[UUID, datetime],
        now: datetime,
    ) -> tuple[store.Attempt, Subscription] | None:
        """The event's next handler to run now, taken off `pending`; None when none is left.
        Handlers done or given up on are skipped for good; one not due yet sets `retry_at`."""
        while pending:
            subscription = pending.pop(0)
            run = runs.get(subscription.name)
            if run is not None and run.status != "retrying":
                continue  # done, or given up: never again for this event
            if run is not None and run.next_attempt_at is not None and run.next_attempt_at > now:
                retry_at[event.id] = _earliest(retry_at.get(event.id), run.next_attempt_at)
                continue
            attempts = (run.attempts if run is not None else 0) + 1
            return store.Attempt(event, subscription.name, attempts), subscription
        return None

    async def _attempt(self, attempt: store.Attempt, subscription: Subscription) -> store.Outcome:
        """Run one handler once; how it went, and when to try again if it should be."""
        event, attempts = attempt.event, attempt.attempts
        error: str | None = None
        try:
            await asyncio.wait_for(self._bus.deliver(event, subscription), self._handler_timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
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
            next_at = self._clock() + self.backoff(attempts)
        return store.Outcome(event.id, subscription.name, status, attempts, next_at, error)

    def backoff(self, attempts: int) -> timedelta:
        """1 s, 2 s, 4 s, … up to the maximum: a flaky mail server gets room to recover."""
        return min(self._first_delay * (1 << min(attempts - 1, 30)), self._max_delay)


@dataclass
class _Plan:
    """One step of a batch: the attempts to start, and the events to release."""

    due: list[store.Attempt] = field(default_factory=list)
    finished: list[store.Release] = field(default_factory=list)


class _Batch:
    """One claim's events on their way through their handlers: what is left to run for each,
    what has run, and when the events that must try again are due."""

    def __init__(
        self, events: list[Event], bus: EventBus, runs: dict[UUID, dict[str, store.HandlerRun]]
    ) -> None:
        self.events = events  # still leased here, with handlers left to consider
        self.pending = {event.id: bus.subscriptions_for(event.type) for event in events}
        self.runs = runs
        self.retry_at: dict[UUID, datetime] = {}
        self.outcomes: list[store.Outcome] = []  # the last step's, not yet recorded
        self.due: dict[UUID, Subscription] = {}  # the handler each started attempt runs


def _log_failures(done: set[asyncio.Task[None]]) -> None:
    # One event's trouble must not stop the others; the event stays leased until its lease ends
    # and is then taken again. A database outage is expected and waited out, not a bug.
    for task in done:
        error = task.exception()
        if isinstance(error, ServiceUnavailable):
            log.warning("dispatching an event deferred: %s", error.message)
        elif error is not None:
            log.error("dispatching an event failed", exc_info=error)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current
