"""Relay connections: one generic shape, named per node type (UserConnection, UserEdge, …)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from app.engine import batch
from app.pagination import Page
from resolvers.lazy import Lazy, assemble

NodeT = TypeVar("NodeT")
EntityT = TypeVar("EntityT")
Count = Callable[[], Awaitable[int]]


@strawberry.type
class PageInfo(Lazy):
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
    edges: strawberry.Private[list[Edge[Any]]]

    LAZY = {
        "start_cursor": lambda info: info.edges[0].cursor if info.edges else None,
        "end_cursor": lambda info: info.edges[-1].cursor if info.edges else None,
    }


@strawberry.type
class Edge(Lazy, Generic[NodeT]):
    cursor: str
    node: NodeT
    entity: strawberry.Private[Any]
    encode: strawberry.Private[Callable[[Any], str]]

    LAZY = {"cursor": lambda edge: edge.encode(edge.entity)}


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
    # Cursors are encoded only for the edges (and page ends) a query reads them from.
    edges = [assemble(Edge, node=node(e), entity=e, encode=cursor) for e in page.items]
    page_info = assemble(
        PageInfo, has_next_page=page.has_next, has_previous_page=page.has_previous, edges=edges
    )
    return Connection(edges=edges, page_info=page_info, count=count)


def known_count(total: int) -> Count:
    async def count() -> int:
        return total

    return count
