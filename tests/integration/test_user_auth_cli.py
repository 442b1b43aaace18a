"""rotate-signing-key through the CLI, code-flow clients, and serve refusing production defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from joserfc.jws import extract_compact

from app.config import PROJECT_ROOT, Settings, production_problems
from app.db.urls import DatabaseUrl
from app.repositories import signing_keys as signing_key_repo
from tests.auth_support import running_app


def _cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _read(path: str) -> str:
    return Path(path).read_text()


async def test_rotate_signing_key_publishes_both_kids_before_signing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    key_file = str(tmp_path / "key.pem")
    rotated = _cli(url, "rotate-signing-key", "--json", OAUTH_SIGNING_KEY_FILE=key_file)
    assert rotated.returncode == 0, rotated.stderr
    new_kid = json.loads(rotated.stdout)["kid"]

    async with running_app(DatabaseUrl.parse(url), signing_key_pem=_read(key_file)) as app:
        published = (await app.http.get("/.well-known/jwks.json")).json()
        token, _ = app.services.tokens.mint(client_id="c", user_id=None, scope="")
        configured_kid = app.services.signing_key.kid

    assert {k["kid"] for k in published["keys"]} == {configured_kid, new_kid}
    # The default delay (three revocation refreshes) has not passed: the old key still signs.
    assert extract_compact(token.encode()).protected["kid"] == configured_kid


def test_create_client_for_the_code_flow_needs_a_redirect_uri(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clients.sqlite3'}"
    base = ["create-client", "--name", "web", "--grant-types", "authorization_code,refresh_token"]
    missing = _cli(url, *base, "--scopes", "orders:read")
    insecure = _cli(url, *base, "--scopes", "orders:read", "--redirect-uri", "http://x.test/cb")
    made = _cli(
        url, *base, "--scopes", "orders:read,admin", "--redirect-uri", "https://x.test/cb", "--json"
    )
    assert missing.returncode == 1
    assert "redirect-uri" in missing.stderr
    assert insecure.returncode == 1
    assert "https" in insecure.stderr
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["client_secret"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["OAUTH_SIGNING_KEY", "SESSION_SECRET", "OAUTH_ISSUER"]),
        (
            {
                "SESSION_SECRET": "kJ3n-Qx8vLr2Tz9wPb5YhM1cUe7aDs4Gf6Ho0Ni",
                "OAUTH_ISSUER": "https://api.example.com",
            },
            ["OAUTH_SIGNING_KEY"],
        ),
    ],
)
def test_production_refuses_development_defaults(env: dict[str, str], expected: list[str]) -> None:
    settings = Settings.from_env({"APP_ENV": "production", **env})
    problems = " ".join(production_problems(settings))
    for name in expected:
        assert name in problems
    assert len(production_problems(settings)) == len(expected)


def test_serve_exits_when_production_is_misconfigured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    result = _cli(url, "serve", APP_ENV="production")
    assert result.returncode == 1
    assert "refusing to serve" in result.stderr
    assert "SESSION_SECRET" in result.stderr
    assert not (tmp_path / "prod.sqlite3").exists(), "nothing ran, not even migrations"


def test_production_with_real_settings_has_no_problems(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    settings = Settings.from_env(
        {
            "APP_ENV": "production",
            "SESSION_SECRET": "kJ3n-Qx8vLr2Tz9wPb5YhM1cUe7aDs4Gf6Ho0Ni",
            "OAUTH_ISSUER": "https://api.example.com",
            "OAUTH_SIGNING_KEY_FILE": str(key),
        }
    )
    assert production_problems(settings) == []


def test_without_session_secret_each_process_signs_sessions_with_its_own_random_key() -> None:
    show = "from app.config import Settings; print(Settings.from_env({}).auth.session_key)"
    other = subprocess.run(
        [sys.executable, "-c", show], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    here = Settings.from_env({}).auth.session_key

    assert other.returncode == 0, other.stderr
    assert len(here) >= 32
    assert here == Settings.from_env({"APP_ENV": "staging"}).auth.session_key, "one per process"
    assert other.stdout.strip() != here, "no session key is shared, let alone published"
    configured = Settings.from_env({"SESSION_SECRET": "c" * 40}).auth
    assert configured.session_key == "c" * 40


async def test_rotated_keys_are_stored_encrypted_under_the_configured_kek(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sealed.sqlite3'}"
    key_file = str(tmp_path / "key.pem")
    kek = Fernet.generate_key().decode()
    env = {"OAUTH_SIGNING_KEY_FILE": key_file, "OAUTH_KEY_ENCRYPTION_KEY": kek}
    rotated = _cli(url, "rotate-signing-key", "--json", **env)
    assert rotated.returncode == 0, rotated.stderr
    new_kid = json.loads(rotated.stdout)["kid"]
    refused = _cli(url, "rotate-signing-key", APP_ENV="production", OAUTH_SIGNING_KEY_FILE=key_file)

    async with running_app(
        DatabaseUrl.parse(url), signing_key_pem=_read(key_file), key_encryption_key=kek
    ) as app:
        async with app.db.read() as conn:
            stored = await signing_key_repo.list_keys(conn)
        published = (await app.http.get("/.well-known/jwks.json")).json()

    assert [row.kid for row in stored] == [new_kid]
    assert stored[0].private_pem.startswith("fernet:")
    assert "PRIVATE KEY" not in stored[0].private_pem
    assert new_kid in {k["kid"] for k in published["keys"]}
    assert refused.returncode == 1
    assert "OAUTH_KEY_ENCRYPTION_KEY" in refused.stderr
