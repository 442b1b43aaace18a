"""The costliest documents the limits let through: each family's largest member, validated cold.

`python -m bench.validation` prints, per family of hostile document, the largest size that passes
every pre-validation limit (found by bisection on the real DocumentPreparer with the default
GraphQLLimits) and the CPU time (this thread's, best of several runs, cache cleared each time) to
prepare it: parse, limits and schema validation. Families: one field repeated, repeated
sub-trees (with and without differing arguments), a tree of every distinct field, many
fragments over one type, twenty root fields with deep sub-trees, unused variables, repeated
directives, a long list argument, `node` with inline fragments, fragments nested in fragments,
repeated inline fragments.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from graphql import GraphQLNonNull, get_named_type, is_composite_type

from app.config import GraphQLLimits
from app.http.documents import DocumentPreparer, Prepared
from resolvers.schema import build_schema

RUNS = 7


def _tree(preparer: DocumentPreparer, type_name: str, depth: int, budget: list[int]) -> str:
    """Every field of each type (no required arguments), nested, until `budget` runs out."""
    graphql_type = preparer._schema.type_map[type_name]
    parts = []
    for name, field in getattr(graphql_type, "fields", {}).items():
        if budget[0] <= 0:
            break
        if any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
            continue
        named = get_named_type(field.type)
        if is_composite_type(named):
            if depth <= 1 or not hasattr(named, "fields"):
                continue
            budget[0] -= 1
            inner = _tree(preparer, named.name, depth - 1, budget)
            parts.append(f"{name} {{ {inner or '__typename'} }}")
        else:
            budget[0] -= 1
            parts.append(name)
    return " ".join(parts)


def families(preparer: DocumentPreparer) -> dict[str, Callable[[int], str]]:
    user_tree = (
        "edges { node { id email createdAt profile { displayName firstName lastName } "
        "orders { edges { node { id status total { amount currency } "
        "items { quantity product { id name sku } } } } } } }"
    )
    node_shapes = (
        "... on User { id email orders { edges { node { id } } } } "
        "... on Order { id status user { id } } ... on Product { id name }"
    )
    return {
        "one field repeated": lambda r: "{ products { edges { node { " + "id " * r + "} } } }",
        "repeated sub-trees": lambda r: (
            "{ me { "
            + " ".join(["orders { edges { node { user { orders { edges { cursor } } } } } }"] * r)
            + " } }"
        ),
        "sub-trees, differing arguments": lambda r: (
            "{ me { "
            + " ".join(
                f"orders(first: {i % 100}) {{ edges {{ node {{ id }} }} }}" for i in range(r)
            )
            + " } }"
        ),
        "every distinct field": lambda r: "{ " + _tree(preparer, "Query", 11, [r]) + " }",
        "many fragments, one type": lambda r: (
            "{ products { edges { node { "
            + " ".join(f"...F{i}" for i in range(r))
            + " } } } } "
            + " ".join(f"fragment F{i} on Product {{ id name sku stock }}" for i in range(r))
        ),
        "root fields with sub-trees": lambda r: (
            "{ " + " ".join(f"a{i}: users(first: {i}) {{ {user_tree} }}" for i in range(r)) + " }"
        ),
        "unused variables": lambda r: (
            "query Q("
            + " ".join(f"$v{i}: Int" for i in range(r))
            + ") { products { edges { node { id } } } }"
        ),
        "repeated directives": lambda r: (
            "{ products { edges { node { id " + "@include(if: true) " * r + "} } } }"
        ),
        "long list argument": lambda r: (
            "mutation { createOrder(input: {items: ["
            + ", ".join('{productId: "UHJvZHVjdDox", quantity: 1}' for _ in range(r))
            + "]}) { order { id } } }"
        ),
        "node with inline fragments": lambda r: (
            "{ " + " ".join(f'a{i}: node(id: "x") {{ {node_shapes} }}' for i in range(r)) + " }"
        ),
        "fragments in fragments": lambda r: (
            "{ users { edges { node { ...F"
            + str(r - 1)
            + " } } } } fragment F0 on User { id email } "
            + " ".join(
                f"fragment F{i} on User {{ ...F{i - 1} "
                f"orders {{ edges {{ node {{ user {{ ...F{i - 1} }} }} }} }} }}"
                for i in range(1, r)
            )
        ),
        "repeated inline fragments": lambda r: (
            "{ products { edges { node { " + "... on Product { id name } " * r + "} } } }"
        ),
    }


def _prepare(preparer: DocumentPreparer, query: str) -> Prepared:
    preparer._cache.clear()
    return preparer.prepare(query)


def _within_limits(preparer: DocumentPreparer, query: str) -> bool:
    return not any(
        (e.extensions or {}).get("code") == "QUERY_TOO_COMPLEX"
        for e in _prepare(preparer, query).errors
    )


def largest(preparer: DocumentPreparer, family: Callable[[int], str]) -> int:
    low, high = 1, 2
    while _within_limits(preparer, family(high)) and high < 1 << 20:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if _within_limits(preparer, family(middle)):
            low = middle
        else:
            high = middle
    return low


def cpu_ms(preparer: DocumentPreparer, query: str) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.thread_time()
        _prepare(preparer, query)
        best = min(best, time.thread_time() - started)
    return best * 1000


def main() -> None:
    preparer = DocumentPreparer(build_schema()._schema, GraphQLLimits())
    worst = ("", 0.0)
    print(f"{'family':32s} {'size':>6s} {'chars':>6s} {'CPU ms':>7s}")
    for name, family in families(preparer).items():
        size = largest(preparer, family)
        query = family(size)
        ms = cpu_ms(preparer, query)
        print(f"{name:32s} {size:6d} {len(query):6d} {ms:7.1f}")
        worst = max(worst, (name, ms), key=lambda item: item[1])
    print(f"worst: {worst[0]}, {worst[1]:.1f} ms")


if __name__ == "__main__":
    main()
