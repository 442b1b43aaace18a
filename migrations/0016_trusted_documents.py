"""Trusted documents: the operations first-party apps may run when PERSISTED_QUERIES=trusted.

Registered from a manifest (`python -m app register-documents`), looked up by the id clients send
(Apollo: the SHA-256 of the text; Relay: whatever its compiler chose) or by the text's SHA-256.
"""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0009_events_unpublished"}

steps = [
    step(
        portable(
            """
            CREATE TABLE trusted_documents (
                id VARCHAR(200) NOT NULL,
                sha256 CHAR(64) NOT NULL,
                body TEXT NOT NULL,
                name VARCHAR(200),
                registered_at {timestamp} NOT NULL,
                CONSTRAINT trusted_documents_pkey PRIMARY KEY (id)
            )
            """
        ),
        portable("DROP TABLE trusted_documents"),
    ),
    step(
        portable("CREATE INDEX trusted_documents_sha256_idx ON trusted_documents (sha256)"),
        portable("DROP INDEX trusted_documents_sha256_idx"),
    ),
]
