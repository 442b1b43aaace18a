"""The same migrations, on both databases, forwards, backwards and concurrently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.migrate import MIGRATIONS_DIR, migrate, rollback_last, status
from app.db.tables import metadata
from tests.conftest import MakeUrl

ALL_MIGRATIONS = sorted(p.stem for p in Path(MIGRATIONS_DIR).glob("*.py"))


def test_apply_from_empty_rollback_last_and_reapply(backend: str, make_url: MakeUrl) -> None:
    url = make_url(backend, "migrations")

    assert migrate(url) == ALL_MIGRATIONS
    assert migrate(url) == [], "a second run applies nothing"
    last = rollback_last(url)
    assert last == ALL_MIGRATIONS[-1]
    assert status(url).pending == [last]
    assert migrate(url) == [last]
    assert status(url).pending == []


async def test_migrated_schema_matches_the_query_tables(backend: str, make_url: MakeUrl) -> None:
    url = make_url(backend, "reflect")
    migrate(url)
    db = Database(url, Settings(database_url=str(url)))
    try:
        async with db.write() as conn:
            found = await conn.run_sync(
                lambda sync: {
                    name: {c["name"]: c["nullable"] for c in inspect(sync).get_columns(name)}
                    for name in metadata.tables
                }
            )
    finally:
        await db.dispose()
    for name, table in metadata.tables.items():
        declared = {c.name: c.nullable for c in table.columns}
        assert found[name] == declared, name


def test_processes_starting_together_migrate_once(backend: str, make_url: MakeUrl) -> None:
    url = make_url(backend, "concurrent")
    code = (
        "import sys; from app.db.migrate import migrate; from app.db.urls import DatabaseUrl;"
        "print(len(migrate(DatabaseUrl.parse(sys.argv[1]))))"
    )
    raw = url.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, raw], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    applied = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        applied.append(int(out.strip()))
    assert sorted(applied) == [0, 0, 0, len(ALL_MIGRATIONS)]
