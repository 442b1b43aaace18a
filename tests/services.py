"""Reaching the machine's PostgreSQL and Redis from tests.

Each test run gets its own databases (named after a run id) so runs never see each other's data.
A test that needs a service it cannot reach fails in CI and skips only on a laptop without one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import psycopg
import pytest

from app.db.urls import DatabaseUrl

RUN_ID = uuid.uuid4().hex[:10]
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
T = TypeVar("T")
# Seconds a test waits for a connection slot on a full PostgreSQL before it fails.
FULL_SERVER_WAIT = 60.0


def unavailable(service: str, reason: object) -> None:
    message = f"{service} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI must run every test)")
    pytest.skip(message)


def when_the_server_has_room(connect: Callable[[], T]) -> T:
    """`connect()`, and again while the shared PostgreSQL is full (parallel runs on one machine)
    for up to FULL_SERVER_WAIT seconds, rather than fail the test that needed a connection."""
    deadline = time.monotonic() + FULL_SERVER_WAIT
    delay = 0.1
    while True:
        try:
            return connect()
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


class PostgresServer:
    """Creates and drops this run's databases on the shared server."""

    def __init__(self, admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.admin_url = DatabaseUrl.parse(admin_url)
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return when_the_server_has_room(
            lambda: psycopg.connect(
                self.admin_url.yoyo_url.replace("postgresql+psycopg", "postgresql"),
                autocommit=True,
                connect_timeout=3,
            )
        )

    def check(self) -> None:
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            unavailable("PostgreSQL", error)

    def create_database(self, label: str) -> DatabaseUrl:
        name = f"og_test_{RUN_ID}_{label}"
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.admin_url.with_database(name)

    def allow_connections(self, url: DatabaseUrl, allowed: bool) -> None:
        """Let new connections into one of this run's databases, or turn them away."""
        name = self._own(url)
        with self._admin() as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')

    def terminate_connections(self, url: DatabaseUrl) -> int:
        """End every session on one of this run's databases, waiting until each has ended."""
        name = self._own(url)
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return len(rows)

    def _own(self, url: DatabaseUrl) -> str:
        """Outage tests may only disturb databases this run created, never the shared server."""
        name = url.url.database or ""
        assert name in self.created, f"{name} is not one of this run's databases"
        return name

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
