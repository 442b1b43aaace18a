"""User.create enforces the email shape and the password policy before hashing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from app.domain.models import InvalidUser, Role, User

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def _create(email: str = "Ada@Example.com", password: str = "Correct-horse-1") -> User:
    return User.create(
        email=email, password=password, role=Role.CUSTOMER, now=NOW, hash_password=HASHER.hash
    )


def test_a_valid_user_gets_an_argon2id_hash_and_a_normalized_email() -> None:
    user = _create()
    assert user.email == "ada@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert HASHER.verify(user.password_hash, "Correct-horse-1")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Short-1", "at least 8"),
        ("alllowercase-1", "upper-case"),
        ("ALLUPPERCASE-1", "lower-case"),
        ("No-digits-here", "digit"),
        ("Aa1" + "x" * 200, "at most 128"),
    ],
)
def test_passwords_outside_the_policy(password: str, reason: str) -> None:
    with pytest.raises(InvalidUser, match=reason):
        _create(password=password)


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "two@@example.com", "sp ace@x.com"])
def test_malformed_emails(email: str) -> None:
    with pytest.raises(InvalidUser):
        _create(email=email)
