"""The relay: hands committed, unpublished events from the store to the broker, in sequence order.

Every process runs one; after a commit the unit of work wakes this process's relay, and a poll
(`EVENTS_RELAY_POLL_SECONDS`) is the fallback that catches up after a crash, a broker outage, a
restart, or a commit whose process died before waking anyone.

One relay at a time. On PostgreSQL each batch runs in one transaction that first takes a
transaction-level advisory lock (`pg_advisory_xact_lock`), then reads the oldest unpublished
events, appends them to the broker and marks them published. A transaction-level lock per batch
rather than a session-level lock held by an elected leader because:

- every process's relay is woken by its own commits and simply waits its turn (one pooled
  connection per process at most, for the length of another relay's batch), so an event never
  waits for a leader in another process to poll;
- no connection is held between batches, and there is no stale leader: the lock ends with the
  transaction, or with the session when a process dies, and the next relay republishes whatever
  the dead one had not marked;
- batches are serialised, so each lands in the stream whole and after the previous one.

On SQLite the single process is the relay: the batch is read, appended, then marked in a short
write transaction, so the write lock is never held while the broker is called.

On PostgreSQL each turn appends the numbered, unpublished events in position order and marks them,
then numbers the newly committed ones (`position`, the store's global order), all in one
transaction; a turn that numbered any is followed at once by another, which appends them. Under
load that is one transaction a batch (it was two: numbering, then appending), and an event is
never appended in the transaction that numbers it, so its position was committed before any
reader saw it and never changes: a relay that dies between appending and marking (its numbering
of newer events rolls back with it, unseen) appends the same events at the same positions again
later, and every reader drops positions it has already passed (app.messaging.fanout), so a relay
retry never reaches a subscriber twice. (SQLite's single relay numbers in a write transaction of
its own, then reads, appends and marks.) A transaction that commits late gets a later
position than events numbered before it committed, so nothing ever appears behind a position
already handed out, which is what lets a subscriber resume after a cursor. Order holds per stream
(one aggregate): a stream's next version can only be written after its previous one committed, so
the previous one is always numbered first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from app.db.engine import Database
from app.domain.events import Event
from app.errors import ServiceUnavailable
from app.messaging.broker import Broker, BrokerUnavailable
from app.messaging.loop import WakeableLoop
from app.observability import metrics
from app.repositories import events as store

log = logging.getLogger("app.relay")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Relay(WakeableLoop):
    def __init__(
        self,
        db: Database,
        broker: Broker,
        *,
        batch: int = 500,
        poll_interval: float = 1.0,
        clock: Clock = _utcnow,
    ) -> None:
        self._db = db
        self._broker = broker
        self._batch = batch
        self._clock = clock
        super().__init__(name="event relay", poll_interval=poll_interval)
        # True while the broker refuses events: they are waiting in the store for it.
        self.broker_unavailable = False

    async def round(self) -> None:
        try:
            await self.drain()
        except BrokerUnavailable as error:
            if not self.broker_unavailable:
                log.warning(
                    "events wait in the store: %s; retrying every %.1f s",
                    error,
                    self._poll_interval,
                )
            self.broker_unavailable = True
        except ServiceUnavailable:  # the database is away; the relay resumes when it is back
            log.warning("relaying events failed: the database is unavailable")
        except Exception:
            log.exception("relaying events failed; retrying in %.1f s", self._poll_interval)
        else:
            if self.broker_unavailable:
                log.info("the broker is back; the relay has caught up")
            self.broker_unavailable = False

    async def drain(self) -> int:
        """Relay everything unpublished now; the number of events appended."""
        total = 0
        while not self._stopping:
            relayed = await self.relay_once()
            total += relayed
            if relayed < self._batch:
                break
        return total

    def _measure(self, batch: list[Event]) -> None:
        """For /metrics, once a batch is handed over: each event's delay from commit, and the
        outbox as the relay found it (the events waiting, up to a batch, and the oldest one's
        age), which is zero once a batch comes back short: the relay has caught up."""
        now = self._clock()
        delays = [max((now - event.occurred_at).total_seconds(), 0.0) for event in batch]
        for delay in delays:
            metrics.RELAY_DELAY.observe(delay)
        behind = len(batch) >= self._batch
        metrics.OUTBOX_LAG_EVENTS.set(len(batch) if behind else 0)
        metrics.OUTBOX_LAG_SECONDS.set(delays[0] if behind else 0.0)

    async def relay_once(self) -> int:
        if self._db.dialect == "postgresql":
            appended = 0
            while appended < self._batch:
                batch, numbered = await self._append_then_number()
                self._measure(batch)
                appended += len(batch)
                if not numbered:
                    break  # otherwise the next turn appends what this one numbered, at once
            return appended
        async with self._db.write() as conn:
            await store.assign_positions(conn, self._batch)
        async with self._db.read() as conn:
            batch = await store.unpublished(conn, self._batch)
        if batch:
            await self._broker.append(batch)
            async with self._db.write() as conn:
                await store.mark_published(conn, _sequences(batch), self._clock())
        self._measure(batch)
        return len(batch)

    async def _append_then_number(self) -> tuple[list[Event], int]:
        """One turn on PostgreSQL: append and mark the events numbered by earlier turns, then
        number the newly committed ones for the next; what was appended, and how many were
        numbered."""
        async with self._db.write() as conn:
            await store.take_relay_turn(conn)
            batch = await store.unpublished(conn, self._batch)
            if batch:
                await self._broker.append(batch)  # raising rolls back: nothing is marked
                await store.mark_published(conn, _sequences(batch), self._clock())
            numbered = await store.assign_positions(conn, self._batch)
        return batch, numbered


def _sequences(batch: list[Event]) -> list[int]:
    return [event.sequence for event in batch if event.sequence is not None]
