"""Retention (app.retention) deletes rows by age: indexes so each bounded batch finds
its rows without scanning the whole table."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0009_events_unpublished"}

steps = [
    step(
        portable(f"CREATE INDEX {table}_{column}_idx ON {table} ({column})"),
        portable(f"DROP INDEX {table}_{column}_idx"),
    )
    for table, column in (
        ("access_tokens", "expires_at"),
        ("authorization_codes", "expires_at"),
        ("refresh_tokens", "expires_at"),
        ("idempotency_keys", "created_at"),
    )
]
