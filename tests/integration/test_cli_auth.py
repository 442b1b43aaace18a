"""`python -m app` auth commands: one JSON object with --json; bad input exits 1 with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.__main__ import main
from app.auth.keys import load_signing_key
from app.auth.tokens import AccessTokens
from app.config import Settings
from tests.auth_support import signing_pem
from tests.conftest import MakeUrl


@pytest.fixture
def cli(
    make_url: MakeUrl, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    url = make_url("sqlite", "cli")
    monkeypatch.setenv("DATABASE_URL", str(url))
    monkeypatch.setenv("OAUTH_SIGNING_KEY", signing_pem())
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "64")

    def run(*argv: str) -> tuple[int, Any, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return code, json.loads(lines[-1]) if lines else None, err

    return run


def test_clients_users_keys_and_tokens(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, client, _ = cli(
        "create-client", "--json", "--name", "bench", "--grant-types", "client_credentials",
        "--scopes", "orders:read,users:read",
    )  # fmt: skip
    assert code == 0
    assert set(client) == {"client_id", "client_secret"}

    code, token, _ = cli(
        "issue-token", "--json", "--client-id", client["client_id"],
        "--client-secret", client["client_secret"],
    )  # fmt: skip
    assert code == 0
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "orders:read users:read"

    code, user, _ = cli(
        "create-user", "--json", "--email", "Op@Example.com", "--password", "Op-pass-12"
    )
    assert code == 0
    assert user["email"] == "op@example.com"

    code, key, _ = cli(
        "create-api-key", "--json", "--email", "op@example.com", "--name", "ci",
        "--scopes", "orders:read", "--rate", "100",
    )  # fmt: skip
    assert code == 0
    assert key["key"].startswith("sk_live_")

    code, listed, _ = cli("list-api-keys", "--json", "--email", "op@example.com")
    assert code == 0
    assert [k["id"] for k in listed["api_keys"]] == [key["id"]]
    assert key["key"] not in json.dumps(listed), "a key is shown once, never listed"

    capsys.readouterr()
    argv = ["issue-token", "--client-id", client["client_id"]]
    assert main([*argv, "--client-secret", client["client_secret"]]) == 0
    bare = capsys.readouterr().out
    assert bare.count("\n") == 1, "one line: the token alone, for TOKEN=$(…)"
    assert bare.strip().count(".") == 2, "a JWT"

    code, rotated, _ = cli("rotate-client-secret", "--json", client["client_id"])
    assert code == 0
    assert rotated["client_secret"] != client["client_secret"]
    code, _, err = cli(
        "issue-token",
        "--client-id",
        client["client_id"],
        "--client-secret",
        client["client_secret"],
    )
    assert code == 1
    assert "invalid_client" in err

    assert cli("revoke-api-key", "--json", key["id"])[0] == 0
    assert cli("disable-user", "--json", "--email", "op@example.com")[0] == 0
    assert cli("revoke-client", "--json", client["client_id"])[0] == 0
    code, clients, _ = cli("list-clients", "--json")
    assert code == 0
    assert [c["revoked"] for c in clients["clients"]] == [True]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create-user", "--email", "x@example.com", "--password", "weak"], "at least 8"),
        (["create-client", "--name", "n", "--grant-types", "password", "--scopes", "orders:read"],
         "unsupported grant type"),
        (["create-client", "--name", "n", "--grant-types", "client_credentials",
          "--scopes", "admin"], "may not hold: admin"),
        (["create-api-key", "--email", "nobody@example.com", "--name", "k",
          "--scopes", "orders:read"], "no user has the email"),
        (["revoke-api-key", "not-a-uuid"], "not an API key ID"),
        (["revoke-client", "og_missing"], "no active client"),
    ],
)  # fmt: skip
def test_bad_input_exits_1_with_one_line(cli: Any, argv: list[str], message: str) -> None:
    code, _, err = cli(*argv)
    assert code == 1
    assert message.lower() in err.lower()
    assert len(err.strip().splitlines()) == 1


def test_a_duplicate_user_is_a_conflict(cli: Any) -> None:
    args = ("create-user", "--email", "dup@example.com", "--password", "Dup-pass-12")
    assert cli(*args)[0] == 0
    code, _, err = cli(*args)
    assert code == 1
    assert "already exists" in err


def test_a_signing_key_made_as_the_readme_says_signs_tokens(tmp_path: Path) -> None:
    """README, Deployment: `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 ...`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    path = tmp_path / "signing-key.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", path],
        check=True,
        capture_output=True,
    )
    settings = Settings.from_env({"OAUTH_SIGNING_KEY_FILE": str(path)}).auth
    tokens = AccessTokens(load_signing_key(settings, create=False), settings)
    token, record = tokens.mint(client_id="ops", user_id=None, scope="orders:read")
    assert tokens.verify(token).jti == record.jti
