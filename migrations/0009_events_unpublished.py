"""The relay's work list: committed events not yet handed to the broker, in sequence order.

`published_at` (from 0005) now means "appended to the broker" and is set by the relay alone; the
partial index keeps the relay's poll a short index scan however long the store grows.
"""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0005_event_store"}

steps = [
    step(
        portable(
            "CREATE INDEX events_unpublished_idx ON events (sequence) WHERE published_at IS NULL"
        ),
        portable("DROP INDEX events_unpublished_idx"),
    )
]
