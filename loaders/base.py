"""Shared shape of the loaders: a batch function over keys, bound to the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TypeVar

from app.db.engine import Connection, Database

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFn = Callable[[Database, Sequence[K]], Awaitable[list[V]]]


def in_key_order(keys: Sequence[K], found: Mapping[K, V]) -> list[V | None]:
    """DataLoader results must match the keys one to one; missing keys get None."""
    return [found.get(key) for key in keys]


async def by_keys(
    db: Database,
    keys: Sequence[K],
    fetch: Callable[[Connection, Sequence[K]], Awaitable[Mapping[K, V]]],
) -> list[V | None]:
    """Run one lookup for all keys on a connection borrowed for just this statement."""
    unique = list(dict.fromkeys(keys))
    async with db.read() as conn:
        found = await fetch(conn, unique)
    return in_key_order(keys, found)
