"""The event store: appending a unit of work's events, reading streams, the outbox queries the
side-effect dispatcher claims work with, and the relay's queries (what to hand to the broker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.sql import one_of
from app.db.tables import events, handler_runs
from app.db.types import UTCDateTime
from app.domain.events import Event
from app.errors import ConcurrencyConflict
from app.repositories._upsert import insert_or_skip, upsert


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
        position=m["position"],
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
    """One claim: the events leased to the worker, how many were settled unhandled, and whether
    more may be due (False: the claim saw every due event, so claiming again now finds none)."""

    events: list[Event]
    settled: int
    more: bool = True


async def claim_due(
    conn: AsyncConnection,
    worker: str,
    now: datetime,
    lease_until: datetime,
    has_handlers: Callable[[str], bool],
    scan: int,
    take: int,
) -> Claim:
    """Lease up to `take` of the oldest due, unhandled, unleased events that have handlers to
    `worker`, in one short transaction.

    Of the first `scan` due events, those of types nobody handles are marked handled on the way,
    here, rather than each costing a claim and a release. The dispatcher asks for no more events
    than it can start handling at once, so a lease never covers time spent waiting for a turn.
    On PostgreSQL, SKIP LOCKED lets dispatchers in several processes claim side by side without
    waiting on each other's rows; on SQLite the write transaction (BEGIN IMMEDIATE) already
    serialises claimers.
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
    wanted: list[int] = []
    unhandled: list[int] = []
    rows = (await conn.execute(due)).all()
    more = len(rows) >= scan
    for sequence, type_ in rows:
        if has_handlers(type_):
            if len(wanted) < take:
                wanted.append(sequence)
            else:
                more = True
        else:
            unhandled.append(sequence)
    if unhandled:
        stamp = literal(now, UTCDateTime())
        await conn.execute(
            update(events)
            .where(events.c.sequence.in_(unhandled))
            .values(handled_at=stamp)  # published_at is the relay's alone
        )
    if not wanted:
        return Claim([], len(unhandled), more)
    stmt = (
        update(events)
        .where(events.c.sequence.in_(wanted))
        .values(claimed_by=worker, claimed_until=lease_until)
        .returning(*events.c)
    )
    leased = sorted((_event(row) for row in await conn.execute(stmt)), key=_by_sequence)
    return Claim(leased, len(unhandled), more)


def _by_sequence(event: Event) -> int:
    return event.sequence or 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One handler about to run for one leased event: its `attempts`-th try."""

    event: Event
    handler: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one handler's attempt went: `done`, `retrying` (due again at `next_attempt_at`) or
    `failed` (given up), with the error if it raised."""

    event_id: UUID
    handler: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Release:
    """The end of a lease: the event is handled, or due again at `retry_at`."""

    event: Event
    handled_at: datetime | None
    retry_at: datetime | None


async def runs_for(
    conn: Connection, event_ids: Sequence[UUID]
) -> dict[UUID, dict[str, HandlerRun]]:
    """The handlers' recorded runs for these events, by event, then by handler."""
    stmt = select(handler_runs).where(one_of(handler_runs.c.event_id, event_ids))
    found: dict[UUID, dict[str, HandlerRun]] = {event_id: {} for event_id in event_ids}
    for row in await conn.execute(stmt):
        run = HandlerRun(row.handler, row.status, row.attempts, row.next_attempt_at)
        found[row.event_id][row.handler] = run
    return found


async def start_attempts(
    conn: AsyncConnection,
    worker: str,
    attempts: Sequence[Attempt],
    *,
    lease_until: datetime,
    now: datetime,
) -> list[Attempt]:
    """Renew `worker`'s leases on these attempts' events and record that their handlers are
    about to run; the attempts whose lease still held (only those may run).

    The lease is renewed before every handler, so each starts with a full lease ahead, longer
    than its time limit. The attempt is counted before the side effect is sent: if the process
    dies while sending, the run stays `retrying` and the next claimer tries again (at least once).
    """
    if not attempts:
        return []
    renewed = await conn.execute(
        update(events)
        .where(
            events.c.sequence.in_({a.event.sequence for a in attempts}),
            events.c.claimed_by == worker,
        )
        .values(claimed_until=lease_until)
        .returning(events.c.sequence)
    )
    held = set(renewed.scalars().all())
    starting = [a for a in attempts if a.event.sequence in held]
    await _save_runs(
        conn,
        [Outcome(a.event.id, a.handler, "retrying", a.attempts, None, None) for a in starting],
        now,
    )
    return starting


async def finish_attempts(
    conn: AsyncConnection,
    worker: str,
    outcomes: Sequence[Outcome],
    releases: Sequence[Release],
    *,
    now: datetime,
) -> list[Event]:
    """Record the handlers' outcomes, then end `worker`'s leases on the events it is done
    with; the released events whose lease had passed to another worker (which owns them now)."""
    await _save_runs(conn, outcomes, now)
    kept: set[int] = set()
    handled = [r.event.sequence for r in releases if r.retry_at is None]
    if handled:
        kept |= await _release(conn, worker, handled, handled_at=now, retry_at=None)
    for release in releases:  # a retry is rare: one statement each is fine
        if release.retry_at is not None and release.event.sequence is not None:
            kept |= await _release(
                conn, worker, [release.event.sequence], handled_at=None, retry_at=release.retry_at
            )
    return [r.event for r in releases if r.event.sequence not in kept]


async def _release(
    conn: AsyncConnection,
    worker: str,
    sequences: Sequence[int | None],
    *,
    handled_at: datetime | None,
    retry_at: datetime | None,
) -> set[int]:
    stmt = (
        update(events)
        .where(events.c.sequence.in_(sequences), events.c.claimed_by == worker)
        .values(claimed_by=None, claimed_until=None, handled_at=handled_at, retry_at=retry_at)
        .returning(events.c.sequence)
    )
    return set((await conn.execute(stmt)).scalars().all())


async def _save_runs(conn: AsyncConnection, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Insert or overwrite each (event, handler)'s run, all in one statement."""
    if not outcomes:
        return
    rows = [
        {
            "event_id": o.event_id,
            "handler": o.handler,
            "status": o.status,
            "attempts": o.attempts,
            "next_attempt_at": o.next_attempt_at,
            "last_error": o.error,
            "updated_at": now,
        }
        for o in outcomes
    ]
    await conn.execute(
        upsert(
            conn,
            handler_runs,
            key_columns=("event_id", "handler"),
            update_columns=("status", "attempts", "next_attempt_at", "last_error", "updated_at"),
        ),
        rows,
    )


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


async def assign_positions(conn: AsyncConnection, limit: int) -> int:
    """Give the oldest committed events without a position the next positions, in sequence
    order; how many got one. The relay's turn must be held (or the database be SQLite's one
    writer): positions are handed out by one numberer at a time and never change once committed.
    """
    base = (await conn.execute(select(func.max(events.c.position)))).scalar_one_or_none() or 0
    ranked = text(
        "UPDATE events SET position = :base + ranked.n "
        "FROM (SELECT sequence AS seq, row_number() OVER (ORDER BY sequence) AS n "
        "FROM events WHERE position IS NULL ORDER BY sequence LIMIT :limit) AS ranked "
        "WHERE events.sequence = ranked.seq"
    )
    return (await conn.execute(ranked, {"base": int(base), "limit": limit})).rowcount


async def unpublished(conn: Connection, limit: int) -> list[Event]:
    """The events numbered but not yet given to the broker, in position order."""
    stmt = (
        select(events)
        .where(events.c.published_at.is_(None), events.c.position.is_not(None))
        .order_by(events.c.position)
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


# The subscription side: resuming after a cursor.


async def after_position(
    conn: Connection,
    position: int,
    types: Sequence[str],
    limit: int,
    stream_id: UUID | None = None,
) -> list[Event]:
    """Up to `limit` numbered events of these types after `position`, in position order."""
    stmt = (
        select(events)
        .where(events.c.position > position, events.c.type.in_(types))
        .order_by(events.c.position)
        .limit(limit)
    )
    if stream_id is not None:
        stmt = stmt.where(events.c.stream_id == stream_id)
    return [_event(row) for row in await conn.execute(stmt)]


@dataclass(frozen=True, slots=True)
class Mark:
    """What the store knows of one position: when its event happened, if it is still kept, and
    the lowest position it still keeps (None: the store holds no numbered event)."""

    occurred_at: datetime | None
    first_kept: int | None


async def mark_of(conn: Connection, position: int) -> Mark:
    occurred = (
        await conn.execute(select(events.c.occurred_at).where(events.c.position == position))
    ).scalar_one_or_none()
    first = (await conn.execute(select(func.min(events.c.position)))).scalar_one_or_none()
    return Mark(occurred, None if first is None else int(first))


async def last_position(conn: Connection) -> int:
    return int((await conn.execute(select(func.max(events.c.position)))).scalar_one_or_none() or 0)
