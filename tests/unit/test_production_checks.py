"""Production start-up checks: what `serve` refuses and what it only logs (issue 11)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from app.config import (
    DEFAULT_SIGNING_KEY_FILE,
    PROJECT_ROOT,
    Settings,
    production_notices,
    production_problems,
    secret_problem,
)

STRONG = secrets.token_urlsafe(32)


def _production(key_file: Path | str | None = None, **env: str) -> Settings:
    values = {
        "APP_ENV": "production",
        "SESSION_SECRET": STRONG,
        "OAUTH_ISSUER": "https://api.example.com",
        **env,
    }
    if key_file is not None:
        values["OAUTH_SIGNING_KEY_FILE"] = str(key_file)
    return Settings.from_env(values)


@pytest.mark.parametrize(
    "spelling",
    [
        "./var/signing-key.pem",
        "var/../var/signing-key.pem",
        str(PROJECT_ROOT / "var" / "." / "signing-key.pem"),
        str(PROJECT_ROOT / "var" / ".." / "var" / "signing-key.pem"),
    ],
)
def test_the_development_key_is_refused_however_its_path_is_written(
    spelling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    problems = production_problems(_production(spelling))
    assert any("generated development key" in p for p in problems), problems


def test_a_link_to_the_development_key_is_refused(tmp_path: Path) -> None:
    DEFAULT_SIGNING_KEY_FILE.parent.mkdir(exist_ok=True)
    created = not DEFAULT_SIGNING_KEY_FILE.exists()
    if created:
        DEFAULT_SIGNING_KEY_FILE.write_text("development key stand-in")
    try:
        link = tmp_path / "prod-key.pem"
        os.symlink(DEFAULT_SIGNING_KEY_FILE, link)
        problems = production_problems(_production(link))
    finally:
        if created:
            DEFAULT_SIGNING_KEY_FILE.unlink()
    assert any("generated development key" in p for p in problems), problems


def test_a_real_key_file_passes(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    assert production_problems(_production(key)) == []


def test_debug_is_refused_in_production(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    problems = production_problems(_production(key, DEBUG="true"))
    assert len(problems) == 1
    assert "DEBUG" in problems[0]
    # Elsewhere DEBUG is a developer's tool and stays allowed.
    assert production_problems(Settings.from_env({"APP_ENV": "staging", "DEBUG": "true"})) == []


def test_introspection_in_production_is_allowed_only_when_asked_for_and_is_logged(
    tmp_path: Path,
) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    default = _production(key)
    chosen = _production(key, INTROSPECTION="true")

    assert default.graphql.introspection is False
    assert production_notices(default) == []
    assert production_problems(chosen) == []
    assert any("INTROSPECTION=true" in n for n in production_notices(chosen))


def test_graphiql_is_off_by_default_in_production_only(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    assert _production(key).graphiql is False
    assert _production(key, GRAPHIQL="true").graphiql is True
    assert any("GRAPHIQL" in n for n in production_notices(_production(key, GRAPHIQL="true")))
    assert Settings.from_env({}).graphiql is True
    assert Settings.from_env({"APP_ENV": "staging"}).graphiql is True


@pytest.mark.parametrize(
    "weak",
    [
        " " * 32,
        "a" * 40,
        "ab" * 20,
        "abcd" * 10,
        "0123456789" * 4,
        "short-but-random-Xy7",
        f" {STRONG} ",
    ],
)
def test_weak_session_secrets_are_refused(weak: str, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    assert secret_problem(weak) is not None
    problems = production_problems(_production(key, SESSION_SECRET=weak))
    assert any("SESSION_SECRET" in p for p in problems), problems


@pytest.mark.parametrize(
    "strong",
    [STRONG, secrets.token_hex(16), secrets.token_hex(32), secrets.token_urlsafe(24)],
)
def test_random_secrets_pass(strong: str) -> None:
    assert secret_problem(strong) is None
