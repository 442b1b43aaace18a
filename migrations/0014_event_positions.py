"""Each event's position in the store's one global order: what subscription cursors name.

`sequence` is drawn when a transaction inserts an event, so on PostgreSQL a transaction that
commits late can leave a lower sequence behind events already handed out; a reader resuming "after
sequence N" would miss it. The relay instead numbers events in the order it first sees them
committed (`position`, in its own committed transaction, under its turn), so once an event has a
position nothing can ever appear before it. Events published before this migration keep their
sequence as their position, which is already increasing in the order they were relayed.
"""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0009_events_unpublished"}

steps = [
    step(
        portable(
            """
            ALTER TABLE events ADD COLUMN position BIGINT;
            UPDATE events SET position = sequence WHERE published_at IS NOT NULL;
            CREATE UNIQUE INDEX events_position_key ON events (position);
            CREATE INDEX events_unpositioned_idx ON events (sequence) WHERE position IS NULL
            """
        ),
        portable(
            """
            DROP INDEX events_unpositioned_idx;
            DROP INDEX events_position_key;
            ALTER TABLE events DROP COLUMN position
            """
        ),
    )
]
