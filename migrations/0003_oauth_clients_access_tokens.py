"""OAuth clients and the access tokens issued to them (for introspection and revocation)."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0002_loader_indexes"}

steps = [
    step(
        portable(
            """
            CREATE TABLE oauth_clients (
                id {uuid} NOT NULL PRIMARY KEY,
                client_id VARCHAR(64) NOT NULL,
                client_secret_hash CHAR(64),
                name TEXT NOT NULL,
                client_type VARCHAR(16) NOT NULL,
                grant_types TEXT NOT NULL,
                scopes TEXT NOT NULL,
                redirect_uris {json} NOT NULL,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                revoked_at {timestamp},
                CONSTRAINT oauth_clients_client_id_key UNIQUE (client_id),
                CONSTRAINT oauth_clients_client_type CHECK (client_type IN ('confidential', 'public')),
                CONSTRAINT oauth_clients_secret CHECK ((client_type = 'public') = (client_secret_hash IS NULL)),
                CONSTRAINT oauth_clients_name CHECK (length(name) BETWEEN 1 AND 200)
            );
            CREATE TABLE access_tokens (
                jti VARCHAR(64) NOT NULL PRIMARY KEY,
                client_id VARCHAR(64) NOT NULL REFERENCES oauth_clients (client_id),
                user_id {uuid} REFERENCES users (id),
                scope TEXT NOT NULL,
                issued_at {timestamp} NOT NULL,
                expires_at {timestamp} NOT NULL,
                revoked_at {timestamp}
            );
            CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
            CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);
            CREATE INDEX access_tokens_revoked_idx ON access_tokens (expires_at) WHERE revoked_at IS NOT NULL
            """
        ),
        portable(
            """
            DROP TABLE access_tokens;
            DROP TABLE oauth_clients
            """
        ),
    )
]
