from __future__ import annotations

import pytest

from app.config import DEFAULT_DATABASE_URL, ConfigError, Settings, production_problems
from app.db.urls import DatabaseUrl


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.database_url, settings.host, settings.port) == (
        DEFAULT_DATABASE_URL,
        "127.0.0.1",
        8000,
    )
    assert settings.debug is False
    assert settings.graphql_executor == "levels"
    assert Settings.from_env({"GRAPHQL_EXECUTOR": "Standard"}).graphql_executor == "standard"


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {"PORT": "9001", "DEBUG": "yes", "DB_POOL_SIZE": "3", "DB_POOL_PRE_PING": "off"}
    )
    assert (settings.port, settings.debug, settings.pool.size, settings.pool.pre_ping) == (
        9001,
        True,
        3,
        False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be an integer"),
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE must be at least 1"),
        ({"GRAPHQL_EXECUTOR": "fast"}, "GRAPHQL_EXECUTOR must be levels or standard"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_sqlite_url_derives_driver_urls() -> None:
    url = DatabaseUrl.parse("sqlite:////tmp/x/og.sqlite3")
    assert url.dialect == "sqlite"
    assert str(url.async_url) == "sqlite+aiosqlite:////tmp/x/og.sqlite3"
    assert url.yoyo_url == "sqlite:////tmp/x/og.sqlite3"


def test_relative_sqlite_paths_are_under_the_project() -> None:
    url = DatabaseUrl.parse("sqlite:///var/demo.sqlite3")
    assert url.sqlite_path.is_absolute()
    assert url.sqlite_path.parts[-2:] == ("var", "demo.sqlite3")


def test_postgresql_url_derives_driver_urls() -> None:
    url = DatabaseUrl.parse("postgresql://app:s3cret@db.internal:5433/orders")
    assert url.async_url.render_as_string(hide_password=False) == (
        "postgresql+asyncpg://app:s3cret@db.internal:5433/orders"
    )
    assert url.yoyo_url == "postgresql+psycopg://app:s3cret@db.internal:5433/orders"
    assert "s3cret" not in str(url)


@pytest.mark.parametrize(
    "raw", ["mysql://root@localhost/x", "sqlite://", "postgresql://localhost", "::"]
)
def test_unsupported_urls_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError):
        DatabaseUrl.parse(raw)


@pytest.mark.parametrize(
    ("env", "issuer"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "18400"}, "http://127.0.0.1:18400"),
        ({"HOST": "0.0.0.0", "PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"HOST": "localhost"}, "http://localhost:8000"),
        ({"HOST": "::1", "PORT": "81"}, "http://[::1]:81"),
        ({"PORT": "18400", "OAUTH_ISSUER": "https://api.example.com/"}, "https://api.example.com"),
    ],
)
def test_the_issuer_is_where_the_process_listens_unless_configured(
    env: dict[str, str], issuer: str
) -> None:
    auth = Settings.from_env(env).auth
    assert auth.issuer == issuer
    assert auth.issuer_configured == ("OAUTH_ISSUER" in env)


def test_production_still_requires_an_explicit_issuer() -> None:
    settings = Settings.from_env({"APP_ENV": "production", "HOST": "api.example.com"})
    assert any("OAUTH_ISSUER" in problem for problem in production_problems(settings))


@pytest.mark.parametrize(
    ("env", "kept"),
    [
        ({}, 0),
        ({"RETENTION_EVENT_SECONDS": "604800"}, 604800),
        ({"RETENTION_EVENT_SECONDS": "3600", "EVENTS_REPLAY_WINDOW_SECONDS": "3600"}, 3600),
    ],
)
def test_event_retention_keeps_the_replay_window(env: dict[str, str], kept: int) -> None:
    assert Settings.from_env(env).retention.event_seconds == kept


def test_event_retention_inside_the_replay_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="RETENTION_EVENT_SECONDS"):
        Settings.from_env({"RETENTION_EVENT_SECONDS": "86400"})
