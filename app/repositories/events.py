"""The event store: appending a unit of work's events, reading streams, the outbox queries the
side-effect dispatcher claims work with, and the relay's queries (what to hand to the broker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, and_, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.sql import one_of
from app.db.tables import events, handler_runs
from app.db.types import UTCDateTime
from app.domain.events import Event
from app.errors import ConcurrencyConflict
from app.repositories._upsert import insert_or_skip


def _event(row: Row[tuple[object, ...]]) -> Event:
    m = row._mapping
    return Event(
        id=m["id"],
        stream_id=m["stream_id"],
        stream_type=m["stream_type"],
        version=m["version"],
        type=m["type"],
        occurred_at=m["occurred_at"],
        payload=dict(m["payload"]),
        sequence=m["sequence"],
    )


class EventRepository:
    """The store as a unit of work sees it: append in the work's transaction, read a stream."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def append(self, event: Event) -> int:
        """Store the event and return its global sequence number.

        A taken (stream, version) means another writer changed the aggregate first: the stale
        writer gets `ConcurrencyConflict`, which the use case retries from a fresh read.
        """
        stmt = insert_or_skip(
            self._conn,
            events,
            {
                "id": event.id,
                "stream_id": event.stream_id,
                "stream_type": event.stream_type,
                "version": event.version,
                "type": event.type,
                "payload": event.payload,
                "occurred_at": event.occurred_at,
            },
            conflict_columns=("stream_id", "version"),
            returning=("sequence",),
        )
        sequence = (await self._conn.execute(stmt)).scalar_one_or_none()
        if sequence is None:
            raise ConcurrencyConflict(
                f"{event.stream_type} {event.stream_id} already has version {event.version}"
            )
        return int(sequence)

    async def last_version(self, stream_id: UUID) -> int:
        stmt = select(func.max(events.c.version)).where(events.c.stream_id == stream_id)
        return int((await self._conn.execute(stmt)).scalar_one_or_none() or 0)


async def by_stream_ids(
    conn: Connection, stream_ids: Sequence[UUID], types: Sequence[str] | None = None
) -> dict[UUID, list[Event]]:
    """Each stream's events in version order."""
    stmt = (
        select(events)
        .where(one_of(events.c.stream_id, stream_ids))
        .order_by(events.c.stream_id, events.c.version)
    )
    if types is not None:
        stmt = stmt.where(events.c.type.in_(types))
    found: dict[UUID, list[Event]] = {}
    for row in await conn.execute(stmt):
        found.setdefault(row._mapping["stream_id"], []).append(_event(row))
    return found


async def count_by_type(conn: AsyncConnection, type_: str) -> int:
    stmt = select(func.count()).select_from(events).where(events.c.type == type_)
    return int((await conn.execute(stmt)).scalar_one())


# The outbox side.


@dataclass(frozen=True, slots=True)
class HandlerRun:
    handler: str
    status: str
    attempts: int
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim: the event leased to the worker, if any, and how many were settled unhandled."""

    event: Event | None
    settled: int


async def claim_next(
    conn: AsyncConnection,
    worker: str,
    now: datetime,
    lease_until: datetime,
    has_handlers: Callable[[str], bool],
    scan: int,
) -> Claim:
    """Lease the oldest due, unhandled, unleased event that has handlers to `worker`.

    Run in its own short transaction. Of the first `scan` due events, those of types nobody
    handles are marked handled on the way, here, rather than each costing a claim and a release.
    One event is leased at a time, just before its handlers run, so a lease never has to cover
    a queue of other events' handlers. On PostgreSQL, SKIP LOCKED lets dispatchers in several
    processes claim side by side without waiting on each other's rows; on SQLite the write
    transaction (BEGIN IMMEDIATE) already serialises claimers.
    """
    due = (
        select(events.c.sequence, events.c.type)
        .where(
            events.c.handled_at.is_(None),
            or_(events.c.retry_at.is_(None), events.c.retry_at <= now),
            or_(events.c.claimed_until.is_(None), events.c.claimed_until < now),
        )
        .order_by(events.c.sequence)
        .limit(scan)
        .with_for_update(skip_locked=True)
    )
    wanted: int | None = None
    unhandled: list[int] = []
    for sequence, type_ in (await conn.execute(due)).all():
        if has_handlers(type_):
            if wanted is None:
                wanted = sequence
        else:
            unhandled.append(sequence)
    if unhandled:
        stamp = literal(now, UTCDateTime())
        await conn.execute(
            update(events)
            .where(events.c.sequence.in_(unhandled))
            .values(handled_at=stamp)  # published_at is the relay's alone
        )
    if wanted is None:
        return Claim(None, len(unhandled))
    stmt = (
        update(events)
        .where(events.c.sequence == wanted)
        .values(claimed_by=worker, claimed_until=lease_until)
        .returning(*events.c)
    )
    row = (await conn.execute(stmt)).one()
    return Claim(_event(row), len(unhandled))


async def start_attempt(
    conn: AsyncConnection,
    event: Event,
    worker: str,
    handler: str,
    *,
    attempts: int,
    lease_until: datetime,
    now: datetime,
) -> bool:
    """Renew `worker`'s lease and record that `handler` is about to run; False: lease lost.

    The lease is renewed before every handler, so each starts with a full lease ahead, longer
    than its time limit. The attempt is counted before the side effect is sent: if the process
    dies while sending, the run stays `retrying` and the next claimer tries again (at least once).
    """
    renewed = await conn.execute(
        update(events)
        .where(events.c.sequence == event.sequence, events.c.claimed_by == worker)
        .values(claimed_until=lease_until)
    )
    if renewed.rowcount != 1:
        return False
    values = {
        "status": "retrying",
        "attempts": attempts,
        "next_attempt_at": None,
        "updated_at": now,
    }
    changed = await conn.execute(
        update(handler_runs)
        .where(handler_runs.c.event_id == event.id, handler_runs.c.handler == handler)
        .values(values)
    )
    if changed.rowcount == 0:
        await conn.execute(
            handler_runs.insert().values(event_id=event.id, handler=handler, **values)
        )
    return True


async def runs_for(conn: Connection, event_id: UUID) -> dict[str, HandlerRun]:
    stmt = select(handler_runs).where(handler_runs.c.event_id == event_id)
    return {
        row.handler: HandlerRun(row.handler, row.status, row.attempts, row.next_attempt_at)
        for row in await conn.execute(stmt)
    }


async def record_run(
    conn: AsyncConnection,
    event_id: UUID,
    handler: str,
    *,
    status: str,
    attempts: int,
    next_attempt_at: datetime | None,
    error: str | None,
    now: datetime,
) -> None:
    values = {
        "status": status,
        "attempts": attempts,
        "next_attempt_at": next_attempt_at,
        "last_error": error,
        "updated_at": now,
    }
    changed = await conn.execute(
        update(handler_runs)
        .where(handler_runs.c.event_id == event_id, handler_runs.c.handler == handler)
        .values(values)
    )
    if changed.rowcount == 0:
        await conn.execute(
            handler_runs.insert().values(event_id=event_id, handler=handler, **values)
        )


async def release(
    conn: AsyncConnection,
    event: Event,
    worker: str,
    *,
    handled_at: datetime | None,
    retry_at: datetime | None,
) -> bool:
    """End `worker`'s lease: the event is handled, or due again at `retry_at`.

    Returns False when the lease had passed to another worker, which then owns the event.
    """
    stmt = (
        update(events)
        .where(and_(events.c.sequence == event.sequence, events.c.claimed_by == worker))
        .values(
            claimed_by=None,
            claimed_until=None,
            handled_at=handled_at,
            retry_at=retry_at,
        )
    )
    return (await conn.execute(stmt)).rowcount == 1


async def unhandled_count(conn: AsyncConnection) -> int:
    stmt = select(func.count()).select_from(events).where(events.c.handled_at.is_(None))
    return int((await conn.execute(stmt)).scalar_one())


# The relay side.

# One number, the same in every process of a deployment: the advisory lock that gives one relay at
# a time its turn. Advisory locks are per database, so deployments on other databases never meet.
RELAY_LOCK_KEY = 0x6F67_7265_6C61_79  # "ogrelay"


async def take_relay_turn(conn: AsyncConnection) -> None:
    """Wait for the relay's turn, held until this transaction ends (PostgreSQL only).

    A transaction-level advisory lock: it is released by COMMIT or ROLLBACK, or by the server when
    the session dies, so a crashed relay never keeps the turn and no connection stays checked out
    between batches.
    """
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY})


async def unpublished(conn: Connection, limit: int) -> list[Event]:
    """The oldest committed events the broker has not been given yet, in sequence order."""
    stmt = (
        select(events)
        .where(events.c.published_at.is_(None))
        .order_by(events.c.sequence)
        .limit(limit)
    )
    return [_event(row) for row in await conn.execute(stmt)]


async def mark_published(conn: AsyncConnection, sequences: Sequence[int], now: datetime) -> int:
    stmt = (
        update(events)
        .where(events.c.sequence.in_(sequences), events.c.published_at.is_(None))
        .values(published_at=now)
    )
    return (await conn.execute(stmt)).rowcount


async def unpublished_count(conn: Connection) -> int:
    stmt = select(func.count()).select_from(events).where(events.c.published_at.is_(None))
    return int((await conn.execute(stmt)).scalar_one())
