"""API keys (stored as SHA-256 hashes) and disabling users."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0003_oauth_clients_access_tokens"}

steps = [
    step(
        portable(
            """
            ALTER TABLE users ADD COLUMN disabled_at {timestamp};
            CREATE TABLE api_keys (
                id {uuid} NOT NULL PRIMARY KEY,
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                key_hash CHAR(64) NOT NULL,
                last_four CHAR(4) NOT NULL,
                environment VARCHAR(8) NOT NULL,
                scopes TEXT NOT NULL,
                rate_per_minute INTEGER,
                use_count BIGINT NOT NULL DEFAULT 0,
                created_at {timestamp} NOT NULL,
                last_used_at {timestamp},
                revoked_at {timestamp},
                CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
                CONSTRAINT api_keys_environment CHECK (environment IN ('live', 'test')),
                CONSTRAINT api_keys_rate CHECK (rate_per_minute IS NULL OR rate_per_minute > 0),
                CONSTRAINT api_keys_name CHECK (length(name) BETWEEN 1 AND 200)
            );
            CREATE INDEX api_keys_user_id_idx ON api_keys (user_id)
            """
        ),
        portable(
            """
            DROP TABLE api_keys;
            ALTER TABLE users DROP COLUMN disabled_at
            """
        ),
    )
]
