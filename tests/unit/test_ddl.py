from __future__ import annotations

from app.db.ddl import render


def test_placeholders_become_each_databases_types() -> None:
    template = "CREATE TABLE t (id {uuid}, at {timestamp}, doc {json}); CREATE INDEX i ON t (at)"
    assert render(template, "sqlite") == [
        "CREATE TABLE t (id CHAR(32), at TEXT, doc TEXT)",
        "CREATE INDEX i ON t (at)",
    ]
    assert (
        render(template, "postgresql")[0] == "CREATE TABLE t (id UUID, at TIMESTAMPTZ, doc JSONB)"
    )
