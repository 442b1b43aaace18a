"""Authorization codes, refresh-token families and signing keys (the user-facing OAuth flow).

Numbered 0007 and depending on 0004 only: 0005/0006 are developed in parallel and touch other
tables, so yoyo may apply them in either order.
"""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0004_api_keys_disabled_users"}

steps = [
    step(
        portable(
            """
            ALTER TABLE access_tokens ADD COLUMN family_id {uuid};
            CREATE INDEX access_tokens_family_id_idx ON access_tokens (family_id);
            CREATE TABLE authorization_codes (
                code_hash CHAR(64) NOT NULL PRIMARY KEY,
                client_id VARCHAR(64) NOT NULL REFERENCES oauth_clients (client_id),
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                redirect_uri TEXT NOT NULL,
                scope TEXT NOT NULL,
                code_challenge VARCHAR(128) NOT NULL,
                code_challenge_method VARCHAR(8) NOT NULL,
                issued_at {timestamp} NOT NULL,
                expires_at {timestamp} NOT NULL,
                used_at {timestamp},
                family_id {uuid},
                CONSTRAINT authorization_codes_method CHECK (code_challenge_method = 'S256')
            );
            CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
            CREATE TABLE refresh_tokens (
                token_hash CHAR(64) NOT NULL PRIMARY KEY,
                family_id {uuid} NOT NULL,
                client_id VARCHAR(64) NOT NULL REFERENCES oauth_clients (client_id),
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                scope TEXT NOT NULL,
                issued_at {timestamp} NOT NULL,
                expires_at {timestamp} NOT NULL,
                used_at {timestamp},
                revoked_at {timestamp}
            );
            CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
            CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
            CREATE TABLE signing_keys (
                kid VARCHAR(128) NOT NULL PRIMARY KEY,
                private_pem TEXT NOT NULL,
                created_at {timestamp} NOT NULL,
                activates_at {timestamp} NOT NULL
            )
            """
        ),
        portable(
            """
            DROP TABLE signing_keys;
            DROP TABLE refresh_tokens;
            DROP TABLE authorization_codes;
            DROP INDEX access_tokens_family_id_idx;
            ALTER TABLE access_tokens DROP COLUMN family_id
            """
        ),
    )
]
