"""Shared shape of the loaders: a batch function over keys, bound to the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader, DefaultCache

from app.db.engine import Connection, Database
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
    fetch: Callable[[Connection, Sequence[K]], Awaitable[Mapping[K, V]]],
) -> list[V | None]:
    """Run one lookup for all keys on a connection borrowed for just this statement."""
    unique = list(dict.fromkeys(keys))
    async with db.read() as conn:
        found = await fetch(conn, unique)
    return in_key_order(keys, found)


class LevelLoader(DataLoader[K, V]):
    """A DataLoader that also answers a whole level of keys with one call of its batch function.

    `load` serves resolvers one key at a time (batched by the event loop's tick, one future per
    key); `load_level` serves the level executor, which already holds every key of a level: no
    futures, no scheduling. Both share one memo, so a key fetched either way is fetched once per
    request.
    """

    def __init__(self, load_fn: Callable[[Sequence[K]], Awaitable[Sequence[V]]]) -> None:
        super().__init__(_measured(type(self).__name__, load_fn))
        self._values: dict[K, V] = {}

    def load(self, key: K) -> Awaitable[V]:
        values = self._values
        if key in values:
            future = self.loop.create_future()
            future.set_result(values[key])
            return future
        return super().load(key)

    async def load_level(self, keys: Sequence[K]) -> list[V]:
        values = self._values
        missing = [key for key in dict.fromkeys(keys) if key not in values]
        if missing:
            fetch: list[K] = []
            waiting: list[tuple[K, Awaitable[V]]] = []
            futures = self.cache_map
            if isinstance(futures, DefaultCache) and not futures.cache_map:
                fetch = missing  # nothing was ever loaded one key at a time
            else:
                for key in missing:
                    future = futures.get(key)
                    if future is None:
                        fetch.append(key)
                    else:
                        waiting.append((key, future))
            if fetch:
                found: Sequence[Any] = await self.load_fn(fetch)
                values.update(zip(fetch, found, strict=True))
            for key, pending in waiting:
                values[key] = await pending
        return [values[key] for key in keys]


_batch_size_by_loader: dict[str, Callable[[float], None]] = {}


def _measured(
    name: str, load_fn: Callable[[Sequence[K]], Awaitable[Sequence[V]]]
) -> Callable[[Sequence[K]], Awaitable[Sequence[V]]]:
    """The batch function, reporting each batch's size to /metrics
    (og_dataloader_batch_size{loader=<class>})."""

    async def measured(keys: Sequence[K]) -> Sequence[V]:
        observe = _batch_size_by_loader.get(name)
        if observe is None:
            observe = _batch_size_by_loader[name] = metrics.LOADER_BATCH.labels(name).observe
        observe(len(keys))
        return await load_fn(keys)

    return measured
