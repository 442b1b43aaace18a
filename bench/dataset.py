"""The benchmark database: created once, reseeded only when the data set's definition changes.

Seeding ~100,000 rows takes a while, so the database keeps a version stamp (a PostgreSQL database
comment) and is rebuilt only when the seed code, the bench size or the migrations change.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import psycopg
from psycopg import sql

from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.migrate import MIGRATIONS_DIR, migrate
from app.db.urls import DatabaseUrl
from app.seed import BENCH, seed

SEED = 2026
STAMP_PREFIX = "ordergraph-bench"
TABLES = ("products", "users", "profiles", "orders", "order_items")


def dataset_version() -> str:
    """A digest of everything that decides the rows: generator code, size, seed, migrations."""
    digest = hashlib.sha256()
    digest.update((PROJECT_ROOT / "app" / "seed.py").read_bytes())
    digest.update(repr((BENCH, SEED)).encode())
    for path in sorted(MIGRATIONS_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _conninfo(url: DatabaseUrl) -> str:
    return url.url.set(drivername="postgresql").render_as_string(hide_password=False)


class NotOurDatabase(RuntimeError):
    """The configured database exists but `make bench` did not create it: never drop it."""


@dataclass(frozen=True)
class Dataset:
    version: str
    reseeded: bool
    counts: dict[str, int]


def _stamp(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return str(row[0] or "")


def _set_stamp(conn: psycopg.Connection[tuple[object, ...]], name: str, text: str) -> None:
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text))
    )


def prepare(url: DatabaseUrl) -> Dataset:
    """Make `url` hold the current benchmark data set, rebuilding it only if it is stale."""
    if url.dialect != "postgresql":
        raise ValueError("the benchmark runs on PostgreSQL")
    name = url.url.database or ""
    version = dataset_version()
    wanted = f"{STAMP_PREFIX} {version}"
    with psycopg.connect(
        _conninfo(url.with_database("postgres")), autocommit=True, connect_timeout=5
    ) as admin:
        stamp = _stamp(admin, name)
        if stamp is not None and not stamp.startswith(STAMP_PREFIX):
            raise NotOurDatabase(
                f"database {name!r} exists and was not created by make bench; "
                "drop it or point BENCH_DATABASE_URL at another database"
            )
        rebuild = stamp != wanted
        if rebuild:
            if stamp is not None:
                print(f"benchmark data set changed ({stamp!r} -> {wanted!r}): rebuilding {name}")
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            # Stamped at once so a half-built database is still recognisably ours.
            _set_stamp(admin, name, f"{STAMP_PREFIX} (seeding)")
        migrate(url)
        seeded = asyncio.run(_seed(url))
        if seeded:
            with psycopg.connect(_conninfo(url), autocommit=True) as conn:
                conn.execute("ANALYZE")  # plans as stable as the data, from the first run
        _set_stamp(admin, name, wanted)
    return Dataset(version=version, reseeded=seeded, counts=count_rows(url))


async def _seed(url: DatabaseUrl) -> bool:
    db = Database(url, Settings(database_url=str(url)))
    try:
        return await seed(db, BENCH, seed=SEED, progress=True)
    finally:
        await db.dispose()


def count_rows(url: DatabaseUrl) -> dict[str, int]:
    with psycopg.connect(_conninfo(url)) as conn:
        counts: dict[str, int] = {}
        for table in TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts
