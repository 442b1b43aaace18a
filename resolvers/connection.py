"""Relay connections: one generic shape, named per node type (UserConnection, UserEdge, …)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from app.engine import batch
from app.pagination import Page

NodeT = TypeVar("NodeT")
EntityT = TypeVar("EntityT")
Count = Callable[[], Awaitable[int]]


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


async def _total_counts(context: object, connections: Sequence[Connection[Any]]) -> list[Any]:
    # Each count is known already or a DataLoader load: gathered, so those share one batch.
    return list(await asyncio.gather(*(c.count() for c in connections), return_exceptions=True))


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Count]

    @strawberry.field(
        description="All items in the list, not just this page.", metadata=batch(_total_counts)
    )
    async def total_count(self) -> int:
        # Counted only when asked for: most clients never select it.
        return await self.count()


def connection(
    page: Page[EntityT],
    node: Callable[[EntityT], NodeT],
    cursor: Callable[[EntityT], str],
    count: Count,
) -> Connection[NodeT]:
    edges = [Edge(cursor=cursor(entity), node=node(entity)) for entity in page.items]
    page_info = PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return Connection(edges=edges, page_info=page_info, count=count)


def known_count(total: int) -> Count:
    async def count() -> int:
        return total

    return count
