"""A deterministic demo data set: the same rows on every machine, for demos, tests and benches."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from app.db import tables
from app.db.engine import Database
from app.domain.models import OrderStatus, Role, display_name_for
from app.repositories import bulk

# Argon2id of DEMO_PASSWORD, computed once: hashing 200 passwords would take a minute.
DEMO_PASSWORD = "Demo-password-1"
DEMO_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$7Vpm6VqFva6asIhOv0ZZNw"
    "$5k5BevkDDa5VN4kP8Wzp/5kHk9/93QH+bey2dNKyY4s"
)
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_CUSTOMER_EMAIL = "customer@example.com"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 1000

_FIRST = (
    "Ada Alan Barbara Claude Dennis Edsger Frances Grace Guido Hedy"
    " Ivan John Ken Linus Margaret Niklaus Radia Tim Yukihiro Zuse"
).split(" ")
_LAST = (
    "Lovelace Turing Liskov Shannon Ritchie Dijkstra Allen Hopper Rossum Lamarr"
    " Sutherland Backus Thompson Torvalds Hamilton Wirth Perlman Berners-Lee Matsumoto Konrad"
).split(" ")
_ADJ = "Sturdy Quiet Bright Compact Classic Rapid Gentle Bold Smart Daily".split(" ")
_NOUN = "Kettle Lamp Backpack Notebook Headphones Mug Chair Keyboard Bottle Blanket".split(" ")


@dataclass(frozen=True)
class SeedSize:
    products: int = 50
    users: int = 200
    orders: int = 2000
    max_items_per_order: int = 4


DEMO = SeedSize()
BENCH = SeedSize(products=500, users=2000, orders=20000, max_items_per_order=5)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def generate(size: SeedSize, seed: int = 2026) -> dict[str, list[dict[str, Any]]]:
    """All rows of the data set, by table."""
    rng = random.Random(seed)
    products: list[dict[str, Any]] = []
    for n in range(size.products):
        currency = "JPY" if n % 10 == 9 else "USD"
        whole = rng.randint(5, 500)
        # Yen have no minor unit: 500 means ¥500. Dollars are in cents: 1999 means $19.99.
        price = whole * 10 if currency == "JPY" else whole * 100 + rng.choice((0, 49, 99))
        created = EPOCH + timedelta(minutes=n)
        products.append(
            {
                "id": _uuid(rng),
                "sku": f"SKU-{n:05d}",
                "name": f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} {n}",
                "description": f"Demo product number {n}.",
                "price_amount": price,
                "currency": currency,
                "stock": rng.randint(0, 1000),
                "version": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
    users: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    for n in range(size.users):
        if n == 0:
            email, role = DEMO_ADMIN_EMAIL, Role.ADMIN
        elif n == 1:
            email, role = DEMO_CUSTOMER_EMAIL, Role.CUSTOMER
        else:
            email, role = f"user{n:05d}@example.com", Role.CUSTOMER
        created = EPOCH + timedelta(days=1, seconds=n * 97 + rng.randint(0, 96))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        user_id = _uuid(rng)
        users.append(
            {
                "id": user_id,
                "email": email,
                "password_hash": DEMO_PASSWORD_HASH,
                "role": role.value,
                "created_at": created,
                "updated_at": created,
            }
        )
        profiles.append(
            {
                "user_id": user_id,
                "first_name": first,
                "last_name": last,
                "display_name": display_name_for(first, last, email),
                "preferences": {"newsletter": rng.random() < 0.3},
                "updated_at": created,
            }
        )
    by_currency: dict[str, list[dict[str, Any]]] = {}
    for product in products:
        by_currency.setdefault(product["currency"], []).append(product)
    orders: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    statuses = [OrderStatus.PLACED] * 7 + [OrderStatus.FULFILLED] * 2 + [OrderStatus.CANCELLED]
    for _ in range(size.orders):
        user = rng.choice(users)
        currency = "JPY" if rng.random() < 0.1 and "JPY" in by_currency else "USD"
        pool = by_currency.get(currency) or products
        chosen = rng.sample(pool, k=min(len(pool), rng.randint(1, size.max_items_per_order)))
        created = user["created_at"] + timedelta(seconds=rng.randint(60, 300 * 24 * 3600))
        order_id = _uuid(rng)
        total = 0
        for position, product in enumerate(chosen):
            quantity = rng.randint(1, 5)
            total += quantity * product["price_amount"]
            items.append(
                {
                    "id": _uuid(rng),
                    "order_id": order_id,
                    "product_id": product["id"],
                    "position": position,
                    "quantity": quantity,
                    "unit_price_amount": product["price_amount"],
                }
            )
        status = rng.choice(statuses)
        updated = (
            created
            if status is OrderStatus.PLACED
            else created + timedelta(hours=rng.randint(1, 72))
        )
        orders.append(
            {
                "id": order_id,
                "user_id": user["id"],
                "status": status.value,
                "total_amount": total,
                "currency": chosen[0]["currency"],
                "created_at": created,
                "updated_at": updated,
            }
        )
    return {
        "products": products,
        "users": users,
        "profiles": profiles,
        "orders": orders,
        "order_items": items,
    }


async def seed(
    db: Database, size: SeedSize = DEMO, *, seed: int = 2026, progress: bool = False
) -> bool:
    """Load the data set into an empty database; leave a database with any data alone."""
    async with db.write() as conn:
        if not await bulk.is_empty(conn):
            return False
        data = generate(size, seed)
        total = sum(len(rows) for rows in data.values())
        with tqdm(total=total, desc="seeding", unit="rows", disable=not progress) as bar:
            for name, rows in data.items():
                table = tables.metadata.tables[name]
                for start in range(0, len(rows), BATCH):
                    batch = rows[start : start + BATCH]
                    await bulk.insert_rows(conn, table, batch)
                    bar.update(len(batch))
    return True
