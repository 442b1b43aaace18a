"""Authentication while the database is down: 503 / 1013 from the engine's own error, a SQL bug
still a 500, and the task that closes revoked sockets outliving the outage (issue 11).

The outage is real: the engine cannot reach the database (a SQLite file in a missing directory;
for PostgreSQL this test's own database refuses connections and its sessions are terminated).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases import operators as admin
from tests.auth_support import running_app
from tests.conftest import MakeDb
from tests.e2e.ws_support import TRANSPORT_WS, WAIT, ready_socket, serving, socket
from tests.services import PostgresServer

ME = "{ me { email } }"
KEY = "sk_live_" + "A" * 43  # well-formed: authenticating it needs the database


def _no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_an_api_key_during_an_outage_is_503_not_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = DatabaseUrl.parse(f"sqlite:///{tmp_path / 'missing' / 'gone.sqlite3'}")
    async with running_app(unreachable) as app:
        for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
            response = await app.graphql(ME, headers)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            [error] = response.json()["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert "gone.sqlite3" not in response.text
    _no_unhandled_errors(caplog)


async def test_a_sql_bug_while_authenticating_stays_an_internal_error(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_db("sqlite", "auth_sql_bug")

    async def broken(conn: AsyncConnection, key_hash: str) -> Any:
        await conn.execute(text("SELECT no_such_column FROM api_keys"))

    monkeypatch.setattr("app.auth.authenticator.key_repo.find_active_by_hash", broken)
    async with running_app(db.url) as app:
        response = await app.graphql(ME, {"X-API-Key": KEY})

    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


async def _customer_key(db: Database, email: str) -> tuple[str, str]:
    async with running_app(db.url) as app:
        await admin.create_user(
            SqlUnitOfWork.factory(app.db),
            app.services.passwords,
            email=email,
            password="Sturdy-pass-1",
        )
    record, key = await admin.create_api_key(
        SqlUnitOfWork.factory(db), email=email, name="ws", scopes="orders:read"
    )
    return str(record.id), key


@pytest.mark.postgresql
async def test_websockets_ride_out_an_outage_and_still_close_when_the_key_is_revoked(
    make_db: MakeDb, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    db = await make_db("postgresql", "ws_outage")
    key_id, key = await _customer_key(db, "ws-outage@example.com")
    caplog.set_level(logging.WARNING)
    async with (
        serving(db, auth_recheck=0.05) as server,
        ready_socket(server, TRANSPORT_WS, authorization=f"Bearer {key}") as watched,
    ):
        postgres_server.allow_connections(db.url, False)
        try:
            postgres_server.terminate_connections(db.url)
            # A new socket cannot be authenticated now: try again later.
            async with socket(server) as late:
                await late.send({"type": "connection_init", "payload": {"X-API-Key": key}})
                assert await late.close_code() == 1013
            # An operation on the open socket is charged to its key, which needs the database.
            await watched.start("1", ME)
            message = await watched.receive()
            assert message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            await _wait_for(caplog, "credential recheck deferred", rounds=3)
        finally:
            postgres_server.allow_connections(db.url, True)
        await admin.revoke_api_key(SqlUnitOfWork.factory(db), key_id)
        assert await watched.close_code() == 4403
    _no_unhandled_errors(caplog)


async def _wait_for(caplog: pytest.LogCaptureFixture, text_: str, rounds: int) -> None:
    for _ in range(int(WAIT / 0.02)):
        if sum(text_ in r.getMessage() for r in caplog.records) >= rounds:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {rounds} log lines with {text_!r}")
