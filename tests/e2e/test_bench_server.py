"""The bench's own server and credentials, end to end on a SQLite database (no wrk, no timing)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from bench.credentials import bench_client
from bench.run import post, server

USERS = "{ users(first: 1) { edges { node { id email orders(first: 1) { totalCount } } } } }"


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OAUTH_SIGNING_KEY_FILE", str(tmp_path / "signing-key.pem"))
    url = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    migrate(DatabaseUrl.parse(url))
    return url


def test_the_bench_client_is_created_once_and_its_secret_rotated(database_url: str) -> None:
    first = bench_client(database_url)
    second = bench_client(database_url)

    assert second.client_id == first.client_id
    assert second.client_secret != first.client_secret
    assert first.client_secret not in repr(first)


def test_the_bench_server_serves_users_and_orders_to_the_bench_token_beyond_the_burst(
    database_url: str, tmp_path: Path
) -> None:
    credentials = bench_client(database_url)
    with (
        httpx.Client(timeout=30.0) as http,
        server(
            database_url, credentials, http, debug=False, log_path=tmp_path / "server.log"
        ) as running,
    ):
        assert running.token
        refused = http.post(
            f"{running.url}/graphql",
            json={"query": USERS},
            headers={"Content-Type": "application/json"},
        ).json()
        # More requests than the default burst (60): the bench server's limits let them all by.
        answers = [post(http, running, {"query": USERS}) for _ in range(80)]

    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # post() fails on any GraphQL error (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED).
    assert all(answer["data"] == {"users": {"edges": []}} for answer in answers)
