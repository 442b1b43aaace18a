"""The response cache: whole answers to public reads (GraphQL operations over the catalogue, REST
GETs of the catalogue), keyed by what was asked and by the caller's visibility.

Only operations that read nothing but the catalogue are cached, decided from the document before
anything runs (`public_operation`): their answer does not depend on who asks. The key still
carries the visibility class `app.auth.policy.response_visibility` gives the principal, so the
day some principals see more of a product, their answers are cached apart and no principal is
ever served what was cached for another. Entries are tagged `products` and leave with every
product event, like the query cache's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from app.cache import tags
from app.cache.manager import CacheManager, FunctionCodec

# Root fields whose whole answer is public: the catalogue (and the root's type name).
PUBLIC_ROOT_FIELDS = frozenset({"product", "products", "__typename"})

_JSON = FunctionCodec[dict[str, Any]](
    lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False), json.loads
)


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def public_operation(document: DocumentNode, operation: OperationDefinitionNode) -> bool:
    """A query whose root fields (through fragments too) are all catalogue fields."""
    if operation.operation is not OperationType.QUERY:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def public(selections: SelectionSetNode, seen: frozenset[str]) -> bool:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value not in PUBLIC_ROOT_FIELDS:
                    return False
            elif isinstance(selection, InlineFragmentNode):
                if not public(selection.selection_set, seen):
                    return False
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    return False
                if not public(fragment.selection_set, seen | {name}):
                    return False
        return True

    return public(operation.selection_set, frozenset())


class ResponseCache:
    def __init__(self, manager: CacheManager) -> None:
        self.manager = manager

    async def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        visibility: str,
        execute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """The operation's response body; only bodies without errors are kept."""
        key = "gql:" + _digest(query, variables or {}, operation_name, visibility)
        return await self.manager.get_or_load(
            key, execute, tags=[tags.PRODUCT_LIST], codec=_JSON, keep=lambda b: "errors" not in b
        )

    async def rest(
        self,
        version: str,
        resource: str,
        query: Mapping[str, str],
        visibility: str,
        render: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """A REST GET's rendered answer (`render` gives `{"body": …, …}`); errors raise."""
        key = "rest:" + _digest(version, resource, sorted(query.items()), visibility)
        return await self.manager.get_or_load(key, render, tags=[tags.PRODUCT_LIST], codec=_JSON)
