"""The entities the API serves. Plain data with the rules that belong to it."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from app.domain.money import Money


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


class OrderStatus(enum.StrEnum):
    PLACED = "PLACED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


class InvalidUser(ValueError):
    """A user the rules do not allow: a malformed email or a password outside the policy."""


PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128  # hashing cost grows with length; nobody types more than this


def check_password(password: str) -> None:
    """The password policy: long enough, not absurdly long, mixed case and a digit."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidUser(f"the password must have at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidUser(f"the password may have at most {PASSWORD_MAX_LENGTH} characters")
    if not any(c.isupper() for c in password):
        raise InvalidUser("the password needs an upper-case letter")
    if not any(c.islower() for c in password):
        raise InvalidUser("the password needs a lower-case letter")
    if not any(c.isdigit() for c in password):
        raise InvalidUser("the password needs a digit")


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or "@" in domain or any(c.isspace() for c in value):
        raise InvalidUser(f"{email[:80]!r} is not an email address")
    if len(value) > 254:
        raise InvalidUser("the email address may have at most 254 characters")
    return value


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @classmethod
    def create(
        cls,
        *,
        email: str,
        password: str,
        role: Role,
        now: datetime,
        hash_password: Callable[[str], str],
    ) -> User:
        """A new user, checked against the rules before the (deliberately slow) hashing.

        Hashing runs here, synchronously: callers on the event loop run this whole function on
        the password executor (see app.auth.passwords).
        """
        address = normalize_email(email)
        check_password(password)
        return cls(
            id=uuid.uuid4(),
            email=address,
            password_hash=hash_password(password),
            role=role,
            created_at=now,
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: UUID
    first_name: str | None
    last_name: str | None
    display_name: str
    preferences: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Product:
    id: UUID
    sku: str
    name: str
    description: str
    price: Money
    stock: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderItem:
    id: UUID
    order_id: UUID
    product_id: UUID
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    id: UUID
    user_id: UUID
    status: OrderStatus
    total: Money
    created_at: datetime
    updated_at: datetime


def display_name_for(first_name: str | None, last_name: str | None, email: str) -> str:
    """What to call a user who has not chosen a display name."""
    name = " ".join(part for part in (first_name, last_name) if part)
    return name or email.split("@", 1)[0]
