"""The Node interface and fetching any node by its global ID."""

from __future__ import annotations

import strawberry


@strawberry.interface(name="Node", description="An object with an opaque global ID.")
class Node:
    id: strawberry.ID
