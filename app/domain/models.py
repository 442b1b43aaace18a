"""The entities the API serves. Plain data with the rules that belong to it."""

from __future__ import annotations

import enum
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


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime


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
