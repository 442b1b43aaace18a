"""Static and actual query cost (app.http.cost), without I/O."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import CostSettings
from app.http.cost import Cost, CostAnalysis
from resolvers.schema import schema

# The README's examples, with the cost the README states for each.
README_NESTED = """{
  users(first: 20) {
    edges { node { id email profile { displayName }
      orders(first: 10) { totalCount edges { node { id status total { amount currency }
        items { quantity unitPrice { amount } product { sku name } } } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
README_ME = "{ me { email } }"


def cost(query: str, variables: dict[str, Any] | None = None, **settings: Any) -> Cost:
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    coerced = get_variable_values(
        schema._schema, operation.variable_definitions or [], variables or {}
    )
    assert not isinstance(coerced, list), coerced
    return CostAnalysis(schema._schema, CostSettings(**settings)).cost(
        operation, fragments, coerced
    )


def test_the_readme_queries() -> None:
    # 20 users x (user 1 + profile 1 + 10 orders x (order 1 + total 1 + 10 items x 3)) = 6,440
    assert cost(README_NESTED).requested == 6440
    assert cost(README_ME).requested == 1


def test_objects_cost_one_scalars_nothing_connections_multiply_by_first() -> None:
    assert cost("{ products(first: 5) { totalCount } }").requested == 0
    assert cost("{ products(first: 5) { edges { cursor } } }").requested == 0
    assert cost("{ products(first: 5) { edges { node { sku } } } }").requested == 5
    assert cost("{ products(first: 5) { edges { node { price { amount } } } } }").requested == 10
    # Absent `first`: the schema's default (20).
    assert cost("{ products { edges { node { sku } } } }").requested == 20
    # Nested connections multiply.
    nested = "{ users(first: 3) { edges { node { orders(first: 4) { edges { node { id } } } } } } }"
    assert cost(nested).requested == 3 * (1 + 4)


def test_first_from_variables_and_defaults() -> None:
    query = "query Q($n: Int) { products(first: $n) { edges { node { sku } } } }"
    assert cost(query, {"n": 7}).requested == 7
    assert cost(query).requested == 20
    with_default = "query Q($n: Int = 3) { products(first: $n) { edges { node { sku } } } }"
    assert cost(with_default).requested == 3


def test_aliases_count_separately_fragments_as_executed() -> None:
    aliased = """{ a: products(first: 2) { edges { node { sku } } }
                   b: products(first: 3) { edges { node { sku } } } }"""
    assert cost(aliased).requested == 5
    # The same key selected twice (directly and through a fragment) runs once.
    merged = """
        { products(first: 4) { edges { node { sku ...P } } } }
        fragment P on Product { sku price { amount } }
    """
    assert cost(merged).requested == 4 * (1 + 1)
    inline = """{ node(id: "x") {
        ... on User { profile { displayName } } ... on Order { total { amount } } } }"""
    assert cost(inline).requested == 1 + 1 + 1


def test_skip_and_include_with_variables() -> None:
    query = """query Q($full: Boolean!) {
        products(first: 10) { edges { node { sku price @include(if: $full) { amount } } } }
    }"""
    assert cost(query, {"full": True}).requested == 20
    assert cost(query, {"full": False}).requested == 10


def test_lists_ids_and_configured_weights() -> None:
    # An order's items: QUERY_COST_LIST_SIZE assumed (10 by default).
    assert cost('{ order(id: "x") { items { quantity } } }').requested == 1 + 10
    assert cost('{ order(id: "x") { items { quantity } } }', list_size=3).requested == 1 + 3
    # nodes(ids): as many as asked for.
    assert cost('{ nodes(ids: ["a", "b", "c"]) { id } }').requested == 3
    # A configured field weight replaces the default (an expensive resolver).
    weighted = cost(
        '{ order(id: "x") { id items { quantity } } }', field_weights={"Order.items": 5}
    )
    assert weighted.requested == 1 + 10 * 5


def test_mutations_cost_ten_per_root_field() -> None:
    query = 'mutation { cancelOrder(id: "x") { order { id } errors { message } } }'
    # 10 for the write + its order (1) + an assumed 10 user errors.
    assert cost(query).requested == 10 + 1 + 10
    # Also when the root field comes through a fragment.
    spread = 'mutation { ...M } fragment M on Mutation { cancelOrder(id: "x") { order { id } } }'
    assert cost(spread).requested == 10 + 1


def test_fragment_bombs_are_analysed_in_linear_time() -> None:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    fragments.append("fragment F40 on Query { me { id } }")
    assert cost("{ ...F0 } " + " ".join(fragments)).requested == 1


@pytest.mark.parametrize(
    ("data", "actual"),
    [
        (None, 0),
        ({"users": {"edges": [], "pageInfo": {"hasNextPage": False}}}, 0),
        (
            {
                "users": {
                    "edges": [
                        {
                            "node": {
                                "id": "u1",
                                "profile": None,
                                "orders": {
                                    "totalCount": 1,
                                    "edges": [
                                        {
                                            "node": {
                                                "id": "o1",
                                                "total": {"amount": "1"},
                                                "items": [
                                                    {"unitPrice": {}, "product": {}},
                                                    {"unitPrice": {}, "product": None},
                                                ],
                                            }
                                        }
                                    ],
                                },
                            }
                        }
                    ],
                    "pageInfo": {},
                }
            },
            # user 1 + order 1 + total 1 + items 2 + unitPrices 2 + one product
            1 + 1 + 1 + 2 + 2 + 1,
        ),
    ],
)
def test_actual_cost_counts_the_objects_returned(data: Any, actual: int) -> None:
    assert cost(README_NESTED).actual(data) == actual


def test_actual_cost_follows_aliases() -> None:
    query = "{ a: products(first: 2) { edges { node { sku } } } b: me { id } }"
    data = {"a": {"edges": [{"node": {"sku": "x"}}]}, "b": None}
    assert cost(query).actual(data) == 1


_KEYS = ["users", "edges", "node", "id", "profile", "orders", "totalCount", "total", "items"]
_KEYS += ["unitPrice", "product", "pageInfo", "amount", "sku"]


def _results() -> st.SearchStrategy[Any]:
    """Results of any shape over the README query's keys: nulls, lists of lists, objects where
    scalars belong, mappings that are not plain dicts."""
    return st.recursive(
        st.none() | st.integers() | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)
            | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3).map(OrderedDict)
            | st.lists(inner, max_size=3).map(tuple)
        ),
        max_leaves=40,
    )


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.sampled_from(_KEYS), _results(), max_size=3))
def test_the_compiled_actual_cost_agrees_with_the_walk(data: dict[str, Any]) -> None:
    priced = cost(README_NESTED)
    assert priced.actual(data) == priced.actual_by_walking(data)


def _deep(levels: int) -> tuple[str, dict[str, Any]]:
    """An order's user's orders' user's … `levels` times, and a result two wide at every list."""
    query = "{ orders(first: 2) { edges { node { id %s } } } }"
    inner = ""
    for _ in range(levels):
        inner = (
            "user { id orders(first: 2) { edges { node { id items { product { sku } } %s } } } }"
            % (inner or "%s")
        )
    query = query % inner.replace("%s", "")

    def order(depth: int) -> dict[str, Any]:
        if depth == 0:
            return {"id": "o"}
        edges = [{"node": order(depth - 1)}, {"node": None}]
        return {"id": "o", "items": [{"product": {"sku": "s"}}, None], "user": None} | (
            {"user": {"id": "u", "orders": {"edges": edges}}}
        )

    return query, {"orders": {"edges": [{"node": order(levels)}, {"node": order(levels)}]}}


def test_a_deep_tree_is_measured_beyond_the_compiled_depth_and_its_code_grows_linearly() -> None:
    sizes = []
    for levels in (2, 4, 8):
        query, data = _deep(levels)
        priced = cost(query)
        assert priced.actual(data) == priced.actual_by_walking(data) > 0
        sizes.append(len(priced._actual.__code__.co_code))
    # Written once per key of the tree: twice the depth, about twice the code (not its square).
    assert sizes[2] < 3 * sizes[1] < 9 * sizes[0]
