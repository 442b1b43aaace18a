"""One migration text for both databases.

Migrations are written once with a few type placeholders; this fills them in for the database at
hand so SQLite and PostgreSQL get the same tables, constraints and indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TYPES = {
    "sqlite": {
        "uuid": "CHAR(32)",
        "timestamp": "TEXT",
        "json": "TEXT",
        "bytewise_text": "TEXT",
        # AUTOINCREMENT: a deleted row's number is never handed out again.
        "sequence_pk": "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
    },
    "postgresql": {
        "uuid": "UUID",
        "timestamp": "TIMESTAMPTZ",
        "json": "JSONB",
        # Byte order, as SQLite sorts: keyset pages then come out the same on both databases.
        "bytewise_text": 'TEXT COLLATE "C"',
        "sequence_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}


def dialect_of(connection: Any) -> str:
    module = type(connection).__module__
    if module.startswith("sqlite3"):
        return "sqlite"
    if module.startswith("psycopg"):
        return "postgresql"
    raise RuntimeError(f"migrations do not support the driver {module}")


def render(template: str, dialect: str) -> list[str]:
    """The statements of a template, one per `;`, with `{uuid}`-style placeholders filled in."""
    text = template.format(**_TYPES[dialect])
    return [s.strip() for s in text.split(";") if s.strip()]


def portable(template: str) -> Callable[[Any], None]:
    """A yoyo step function that runs the template on whichever database yoyo is migrating."""

    def run(connection: Any) -> None:
        cursor = connection.cursor()
        try:
            for statement in render(template, dialect_of(connection)):
                cursor.execute(statement)
        finally:
            cursor.close()

    return run
