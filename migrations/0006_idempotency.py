"""Idempotency keys: a retried createOrder finds the order its first attempt placed."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0005_event_store"}

steps = [
    step(
        portable(
            """
            CREATE TABLE idempotency_keys (
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                idempotency_key VARCHAR(200) NOT NULL,
                fingerprint CHAR(64) NOT NULL,
                order_id {uuid} NOT NULL
                    REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                created_at {timestamp} NOT NULL,
                CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, idempotency_key)
            )
            """
        ),
        portable("DROP TABLE idempotency_keys"),
    )
]
