"""Each order's history, from the event store."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from uuid import UUID

from app.db.engine import Database
from app.domain.events import Event
from app.repositories import events as repo
from loaders.base import LevelLoader


async def load_streams(db: Database, stream_ids: Sequence[UUID]) -> list[list[Event]]:
    unique = list(dict.fromkeys(stream_ids))
    async with db.read() as conn:
        found = await repo.by_stream_ids(conn, unique)
    return [found.get(stream_id, []) for stream_id in stream_ids]


class StreamEventsLoader(LevelLoader[UUID, list[Event]]):
    """A stream's events in version order, keyed by stream (aggregate) ID."""

    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_streams, db))
