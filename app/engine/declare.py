"""How a field tells the level executor to resolve it without a per-object resolver call.

A Strawberry field keeps its ordinary resolver (the standard executor, and anything the level
executor does not cover, still calls it) and adds, as field metadata, one of:

- `batch(fn)`: the field is a relation, resolved for every parent of a level at once.
  `await fn(context, parents, **arguments)` returns one value per parent, in order; a value that
  is an exception becomes that parent's field error. Per-object rules (authorization) are
  asked inside, once per parent, as the resolver asks them.
- `each(fn)`: a synchronous per-object field: `fn(context, parent, **arguments)` returns its value
  or raises its field error. For cheap per-object logic (an authorization check), so no resolve
  info is built for it.

`arguments` are the field's arguments as the resolver would receive them (Python names, Strawberry
types); an argument the query leaves out and that has no schema default is absent, so `fn` gives
it the resolver's default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

BATCH = "ordergraph.engine.batch"
EACH = "ordergraph.engine.each"

BatchFn = Callable[..., Awaitable[Sequence[Any]]]
EachFn = Callable[..., Any]


def batch(fn: BatchFn) -> dict[str, Any]:
    """Field metadata: resolve this field for a whole level with one call of `fn`."""
    return {BATCH: fn}


def each(fn: EachFn) -> dict[str, Any]:
    """Field metadata: resolve this field per object with `fn(context, parent, **arguments)`."""
    return {EACH: fn}
