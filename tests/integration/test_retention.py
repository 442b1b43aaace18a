"""Retention: expired tokens and codes, old idempotency keys and (when asked) old handled events
are deleted in bounded batches, by the background job and by `python -m app purge`; nothing
still in use is touched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from app.__main__ import main
from app.config import RetentionSettings
from app.db import tables
from app.db.engine import Database
from app.repositories.unit_of_work import SqlUnitOfWork
from app.retention import RetentionJob, purge
from app.seed import SeedSize
from app.usecases import operators
from tests.conftest import MakeDb
from tests.events_support import record_stock_changes, wait_for

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
SIZE = SeedSize(products=2, users=2, orders=3, max_items_per_order=1)


async def _count(db: Database, table: tables.Table) -> int:  # type: ignore[name-defined]
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _populate(db: Database, now: datetime = NOW) -> None:
    """Per kind: one row long expired (or old), one expired just now, one still valid."""
    made = await operators.create_client(
        SqlUnitOfWork.factory(db),
        name=f"c-{uuid.uuid4().hex[:6]}",
        grant_types="client_credentials",
        scopes="users:read",
    )
    client = made.client.client_id
    async with db.read() as conn:
        user_id = (await conn.execute(select(tables.users.c.id).limit(1))).scalar_one()
        order_ids = list((await conn.execute(select(tables.orders.c.id).limit(3))).scalars())
    moments = [now - 3 * DAY, now - timedelta(hours=1), now + DAY]
    async with db.write() as conn:
        for n, expires in enumerate(moments):
            await conn.execute(
                insert(tables.access_tokens).values(
                    jti=f"jti-{n}-{uuid.uuid4().hex}", client_id=client, user_id=user_id,
                    scope="", issued_at=expires - DAY, expires_at=expires,
                )
            )  # fmt: skip
            await conn.execute(
                insert(tables.authorization_codes).values(
                    code_hash=uuid.uuid4().hex * 2, client_id=client, user_id=user_id,
                    redirect_uri="https://a.test/cb", scope="", code_challenge="x" * 43,
                    code_challenge_method="S256", issued_at=expires - DAY, expires_at=expires,
                    used_at=expires - DAY if n == 0 else None,
                )
            )  # fmt: skip
            await conn.execute(
                insert(tables.refresh_tokens).values(
                    token_hash=uuid.uuid4().hex * 2, family_id=uuid.uuid4(), client_id=client,
                    user_id=user_id, scope="", issued_at=expires - DAY, expires_at=expires,
                    used_at=expires - DAY,
                )
            )  # fmt: skip
            await conn.execute(
                insert(tables.idempotency_keys).values(
                    user_id=user_id, idempotency_key=f"k-{n}", fingerprint="f" * 64,
                    order_id=order_ids[n], created_at=expires - DAY,
                )
            )  # fmt: skip


KINDS = {
    "access_tokens": tables.access_tokens,
    "authorization_codes": tables.authorization_codes,
    "refresh_tokens": tables.refresh_tokens,
    "idempotency_keys": tables.idempotency_keys,
}


async def test_purge_deletes_only_what_outlived_its_use(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "retention", SIZE)
    await _populate(db)
    deleted = await purge(db, RetentionSettings(), NOW)
    # Tokens and codes: the one expired days ago goes; the one expired an hour ago stays for
    # the grace day; the valid one stays. Idempotency keys: created more than a day ago go.
    assert deleted == {
        "access_tokens": 1,
        "authorization_codes": 1,
        "refresh_tokens": 1,
        "idempotency_keys": 2,
    }
    for kind, table in KINDS.items():
        assert await _count(db, table) == 3 - deleted[kind], kind
    assert await purge(db, RetentionSettings(), NOW) == dict.fromkeys(deleted, 0)


async def test_a_run_is_bounded(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "retention_bounded", SIZE)
    await _populate(db)
    settings = RetentionSettings(expired_grace_seconds=0, batch=1, max_batches=1)
    first = await purge(db, settings, NOW + 2 * DAY)
    assert set(first.values()) == {1}, "one batch of one row per kind and run"
    second = await purge(db, RetentionSettings(expired_grace_seconds=0), NOW + 2 * DAY)
    assert second == dict.fromkeys(first, 2)


async def test_old_handled_events_go_but_each_stream_keeps_its_latest(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "retention_events")
    committed = await record_stock_changes(db, streams=2, per_stream=3)
    pending = committed[-1]  # stream B's latest; make stream A's first event unhandled
    unhandled = committed[0]
    async with db.write() as conn:
        await conn.execute(
            update(tables.events).values(
                occurred_at=NOW - 10 * DAY, published_at=NOW - 10 * DAY, handled_at=NOW - 10 * DAY
            )
        )
        await conn.execute(
            update(tables.events).where(tables.events.c.id == unhandled.id).values(handled_at=None)
        )
        await conn.execute(
            insert(tables.handler_runs).values(
                event_id=committed[1].id, handler="email", status="done", attempts=1,
                updated_at=NOW - 10 * DAY,
            )
        )  # fmt: skip

    assert (await purge(db, RetentionSettings(), NOW))["idempotency_keys"] == 0
    assert await _count(db, tables.events) == 6, "RETENTION_EVENT_SECONDS=0 keeps every event"

    deleted = await purge(db, RetentionSettings(event_seconds=7 * 24 * 3600), NOW)
    assert deleted["events"] == 3  # stream A: versions 2 (its first is unhandled); B: 1 and 2
    async with db.read() as conn:
        left = set((await conn.execute(select(tables.events.c.id))).scalars())
        runs = await conn.execute(select(func.count()).select_from(tables.handler_runs))
    assert left == {unhandled.id, committed[-2].id, pending.id}
    assert runs.scalar_one() == 0


async def test_the_background_job_purges(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "retention_job", SIZE)
    await _populate(db, datetime.now(UTC))
    job = RetentionJob(db, RetentionSettings(interval_seconds=1, expired_grace_seconds=0))
    await job.start()
    try:

        async def purged() -> bool:
            return await _count(db, tables.access_tokens) == 1  # the valid one

        await wait_for(purged, "the job's first purge")
    finally:
        await job.stop()


def test_the_purge_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'purge.sqlite3'}")
    assert main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "access_tokens: 0" in out
    assert "idempotency_keys: 0" in out


async def test_stopping_the_job_runs_no_purge(make_db: MakeDb) -> None:
    db = await make_db("sqlite", "retention_stop", SIZE)
    await _populate(db, datetime.now(UTC))
    job = RetentionJob(db, RetentionSettings(interval_seconds=3600, expired_grace_seconds=0))
    await job.start()
    await job.stop()
    assert await _count(db, tables.access_tokens) == 3, "nothing purged at start or stop"
