"""Sign-up and API-key rules without a database: which field broke which rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.auth.scopes import ALL_SCOPES
from app.domain.accounts import (
    api_key_created,
    api_key_revoked,
    check_key_request,
    check_registration,
)
from app.domain.auth import ApiKey
from app.domain.errors import DomainError

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def problems(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(p.code.value, p.field) for p in error.value.problems]


def test_a_good_registration_is_normalised_and_named() -> None:
    registration = check_registration(
        email="  Ada@Example.COM ", password="Sturdy-pass-1", first_name=" Ada ", last_name=None
    )
    assert registration.email == "ada@example.com"
    assert registration.first_name == "Ada"
    assert registration.display_name == "Ada"
    unnamed = check_registration(
        email="bob@example.com", password="Sturdy-pass-1", first_name="  ", last_name=None
    )
    assert unnamed.first_name is None
    assert unnamed.display_name == "bob"


def test_every_broken_rule_is_reported_with_its_field() -> None:
    with pytest.raises(DomainError) as error:
        check_registration(
            email="not-an-email", password="short", first_name="x" * 101, last_name=None
        )
    assert problems(error) == [
        ("INVALID_EMAIL", ("email",)),
        ("WEAK_PASSWORD", ("password",)),
        ("BAD_USER_INPUT", ("firstName",)),
    ]


@pytest.mark.parametrize(
    "password", ["alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", "x" * 120 + "Aa1" * 3]
)
def test_the_password_policy_is_the_users(password: str) -> None:
    with pytest.raises(DomainError) as error:
        check_registration(
            email="a@example.com", password=password, first_name=None, last_name=None
        )
    assert problems(error) == [("WEAK_PASSWORD", ("password",))]


def test_key_requests_need_a_name_and_known_scopes() -> None:
    assert check_key_request(" ci ", ["orders:read"], ALL_SCOPES) == (
        "ci",
        frozenset({"orders:read"}),
    )
    with pytest.raises(DomainError) as error:
        check_key_request(" ", ["orders:read", "orders:delete"], ALL_SCOPES)
    assert problems(error) == [
        ("BAD_USER_INPUT", ("name",)),
        ("BAD_USER_INPUT", ("scopes", "1")),
    ]
    with pytest.raises(DomainError) as error:
        check_key_request("ci", [], ALL_SCOPES)
    assert problems(error) == [("BAD_USER_INPUT", ("scopes",))]


def test_key_events_carry_no_secret_and_take_versions_one_and_two() -> None:
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        name="ci",
        last_four="abcd",
        environment="test",
        scopes=frozenset({"orders:write", "orders:read"}),
        rate_per_minute=None,
        use_count=0,
        created_at=NOW,
    )
    created, revoked = api_key_created(key, NOW), api_key_revoked(key, NOW)
    assert (created.type, created.version, created.stream_type) == ("ApiKeyCreated", 1, "ApiKey")
    assert (revoked.type, revoked.version, revoked.stream_id) == ("ApiKeyRevoked", 2, key.id)
    assert created.payload == {
        "userId": str(key.user_id),
        "name": "ci",
        "scopes": ["orders:read", "orders:write"],
        "last4": "abcd",
    }
