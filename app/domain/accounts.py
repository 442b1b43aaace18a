"""Self-service accounts: signing up, and the API keys a user makes for their own scripts.

The password policy and email rules live on `User` (app.domain.models); this module only says
which input field broke which rule, so a client can point at it, and states the events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from app.domain.auth import ApiKey
from app.domain.errors import Code, DomainError, Problem, check
from app.domain.events import Event, EventType, StreamType, new_event
from app.domain.models import InvalidUser, check_password, display_name_for, normalize_email
from app.domain.text import one_line

MAX_NAME = 100
MAX_KEY_NAME = 200
MAX_KEY_SCOPES = 20
# Unrevoked API keys per user, unless configured otherwise (MAX_API_KEYS_PER_USER).
MAX_KEYS_PER_USER = 20


def too_many_keys(limit: int) -> DomainError:
    return DomainError(
        Problem(
            Code.TOO_MANY_API_KEYS,
            f"A user may hold at most {limit} active API keys; revoke one first",
        )
    )


@dataclass(frozen=True, slots=True)
class Registration:
    """Sign-up input that passed the rules (the password is checked, not yet hashed)."""

    email: str
    first_name: str | None
    last_name: str | None

    @property
    def display_name(self) -> str:
        return display_name_for(self.first_name, self.last_name, self.email)


def _name(value: str | None, field: str, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    return one_line(value, field, MAX_NAME, problems) or None


def check_registration(
    *, email: str, password: str, first_name: str | None, last_name: str | None
) -> Registration:
    """Every rule sign-up input breaks, at once, before any (slow) hashing is spent on it."""
    problems: list[Problem] = []
    address = email
    try:
        address = normalize_email(email)
    except InvalidUser as error:
        problems.append(Problem(Code.INVALID_EMAIL, _sentence(error), ("email",)))
    try:
        check_password(password)
    except InvalidUser as error:
        problems.append(Problem(Code.WEAK_PASSWORD, _sentence(error), ("password",)))
    first = _name(first_name, "firstName", problems)
    last = _name(last_name, "lastName", problems)
    check(problems)
    return Registration(address, first, last)


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:]


def check_key_request(
    name: str, scopes: Iterable[str], known: Iterable[str]
) -> tuple[str, frozenset[str]]:
    """A key's name (one printable line of 1..200 characters, trimmed) and its scopes (at
    least one, all known)."""
    problems: list[Problem] = []
    text = one_line(name, "name", MAX_KEY_NAME, problems, required=True)
    wanted = list(scopes)
    known_set = frozenset(known)
    if not wanted:
        problems.append(
            Problem(Code.BAD_USER_INPUT, "Give the key at least one scope", ("scopes",))
        )
    elif len(wanted) > MAX_KEY_SCOPES:
        problems.append(
            Problem(Code.BAD_USER_INPUT, f"At most {MAX_KEY_SCOPES} scopes", ("scopes",))
        )
    else:
        for index, scope in enumerate(wanted):
            if scope not in known_set:
                problems.append(
                    Problem(
                        Code.BAD_USER_INPUT,
                        f"{scope[:50]!r} is not a scope",
                        ("scopes", str(index)),
                    )
                )
    check(problems)
    return text, frozenset(wanted)


def check_key_rate(rate_per_minute: int | None) -> int | None:
    """A key's own rate limit: None (the global one) or at least one request a minute."""
    if rate_per_minute is not None and rate_per_minute < 1:
        raise DomainError.of(
            Code.BAD_USER_INPUT, "The rate must be at least 1 request a minute", "ratePerMinute"
        )
    return rate_per_minute


def _key_event(type_: EventType, key: ApiKey, version: int, now: datetime) -> Event:
    # Never the secret or its hash: events are read by handlers and shown in histories.
    payload = {
        "userId": str(key.user_id),
        "name": key.name,
        "scopes": sorted(key.scopes),
        "last4": key.last_four,
    }
    return new_event(type_, StreamType.API_KEY, key.id, version, payload, now)


def api_key_created(key: ApiKey, now: datetime) -> Event:
    return _key_event(EventType.API_KEY_CREATED, key, 1, now)


def api_key_revoked(key: ApiKey, now: datetime) -> Event:
    """Version 2: a key is created once and revoked at most once, so a second, racing revocation
    meets the taken version (and finds the key already revoked when it starts again)."""
    return _key_event(EventType.API_KEY_REVOKED, key, 2, now)


def user_disabled(user_id: UUID, version: int, now: datetime) -> Event:
    """An operator disabled the account (its keys' revocations are events of their own)."""
    return new_event(EventType.USER_DISABLED, StreamType.USER, user_id, version, {}, now)
