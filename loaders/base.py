"""Shared shape of the loaders: a batch function over keys, bound to the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from app.db.engine import Database
from app.observability import metrics

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFn = Callable[[Database, Sequence[K]], Awaitable[list[V]]]


def in_key_order(keys: Sequence[K], found: Mapping[K, V]) -> list[V | None]:
    """DataLoader results must match the keys one to one; missing keys get None."""
    return [found.get(key) for key in keys]


async def by_keys(
    db: Database,
    keys: Sequence[K],
    fetch: Callable[[AsyncConnection, Sequence[K]], Awaitable[Mapping[K, V]]],
) -> list[V | None]:
    """Run one lookup for all keys on a connection borrowed for just this statement."""
    unique = list(dict.fromkeys(keys))
    async with db.read() as conn:
        found = await fetch(conn, unique)
    return in_key_order(keys, found)


_batch_size_by_loader: dict[str, Callable[[float], None]] = {}


class BatchLoader(DataLoader[K, V]):
    """A DataLoader whose batch sizes go to /metrics (og_dataloader_batch_size{loader=<class>})."""

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V]]], **kw: Any) -> None:
        name = type(self).__name__

        async def measured(keys: list[K]) -> Sequence[V]:
            observe = _batch_size_by_loader.get(name)
            if observe is None:
                observe = _batch_size_by_loader[name] = metrics.LOADER_BATCH.labels(name).observe
            observe(len(keys))
            return await load_fn(keys)

        super().__init__(measured, **kw)
