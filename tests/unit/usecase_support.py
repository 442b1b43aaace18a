"""Principals, products and users placed straight into a fake store, for use-case unit tests."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ALL_SCOPES, ROLE_SCOPES
from app.domain.models import Product, Profile, Role, User
from app.domain.money import Money
from tests.unit.fakes import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ADMIN = Principal(PrincipalKind.ADMIN, user_id=uuid.uuid4(), scopes=frozenset(ALL_SCOPES))


def add_user(store: Store, email: str, role: Role = Role.CUSTOMER) -> User:
    user = User(
        id=uuid.uuid4(),
        email=email,
        password_hash="not-a-hash",
        role=role,
        created_at=T0,
        updated_at=T0,
    )
    store.users[user.id] = user
    store.profiles[user.id] = Profile(user.id, None, None, email.split("@")[0])
    return user


def customer(user: User, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        PrincipalKind.CUSTOMER,
        user_id=user.id,
        scopes=ROLE_SCOPES[Role.CUSTOMER] if scopes is None else scopes,
    )


def add_product(store: Store, stock: int, price: str = "10.00", sku: str | None = None) -> Product:
    product = Product(
        id=uuid.uuid4(),
        sku=sku or f"SKU-{uuid.uuid4().hex[:8]}",
        name="Thing",
        description="",
        price=Money.parse(price, "USD"),
        stock=stock,
        version=1,
        created_at=T0,
        updated_at=T0,
    )
    store.products[product.id] = product
    return product


def disabled(store: Store, user: User) -> User:
    store.users[user.id] = replace(user, disabled_at=T0)
    return store.users[user.id]
