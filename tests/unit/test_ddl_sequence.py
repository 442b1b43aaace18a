from __future__ import annotations

from app.db.ddl import render


def test_sequence_keys_never_reuse_numbers_on_either_database() -> None:
    template = "CREATE TABLE log (n {sequence_pk}, at {timestamp})"
    assert render(template, "sqlite") == [
        "CREATE TABLE log (n INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, at TEXT)"
    ]
    assert render(template, "postgresql") == [
        "CREATE TABLE log (n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TIMESTAMPTZ)"
    ]
