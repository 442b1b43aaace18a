"""The event store, which is also the outbox, and the side-effect handlers' bookkeeping."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0002_loader_indexes"}

steps = [
    step(
        portable(
            """
            CREATE TABLE events (
                sequence {sequence_pk},
                id {uuid} NOT NULL,
                stream_id {uuid} NOT NULL,
                stream_type VARCHAR(32) NOT NULL,
                version INTEGER NOT NULL,
                type VARCHAR(64) NOT NULL,
                payload {json} NOT NULL,
                occurred_at {timestamp} NOT NULL,
                published_at {timestamp},
                handled_at {timestamp},
                claimed_by VARCHAR(64),
                claimed_until {timestamp},
                retry_at {timestamp},
                CONSTRAINT events_id_key UNIQUE (id),
                CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
                CONSTRAINT events_version CHECK (version >= 1)
            );
            CREATE INDEX events_unhandled_idx ON events (sequence) WHERE handled_at IS NULL;
            CREATE TABLE handler_runs (
                event_id {uuid} NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                handler VARCHAR(100) NOT NULL,
                status VARCHAR(16) NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at {timestamp},
                last_error TEXT,
                updated_at {timestamp} NOT NULL,
                CONSTRAINT handler_runs_pkey PRIMARY KEY (event_id, handler),
                CONSTRAINT handler_runs_status CHECK (status IN ('done', 'retrying', 'failed')),
                CONSTRAINT handler_runs_attempts CHECK (attempts >= 0)
            )
            """
        ),
        portable(
            """
            DROP TABLE handler_runs;
            DROP INDEX events_unhandled_idx;
            DROP TABLE events
            """
        ),
    )
]
