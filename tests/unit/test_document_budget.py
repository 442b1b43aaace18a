"""What one document may cost to validate: bounded before validation runs (issue 11).

The review's lever: a short query repeating one selection about a thousand times, with a fresh
comment so the cache misses, cost a second of CPU in the overlapping-fields rule. The limits that
bound that work are checked first, and validation runs off the event loop.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from graphql import get_introspection_query, parse

import app.http.documents as documents
from app.config import GraphQLLimits
from app.http.documents import DocumentPreparer, document_selections, overlapping_pairs
from resolvers.schema import schema

REPEATED = "{ products { edges { node { " + "id " * 1000 + "} } } } # 8f2c"


def _preparer(**limits: Any) -> DocumentPreparer:
    return DocumentPreparer(schema._schema, GraphQLLimits(**limits))


@pytest.fixture
def validation_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validation ran on a document over the limits")

    monkeypatch.setattr(documents, "validate_document", refuse)


def test_the_reviewed_document_is_refused_before_validation(
    validation_must_not_run: None,
) -> None:
    [error] = _preparer(max_tokens=10_000).prepare(REPEATED).errors

    assert error.extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert "MAX_QUERY_SELECTIONS" in error.message


def test_repeats_under_the_selection_limit_meet_the_overlap_limit(
    validation_must_not_run: None,
) -> None:
    query = "{ products { edges { node { " + "id " * 50 + "} } } }"  # 1225 pairs

    [error] = _preparer().prepare(query).errors

    assert error.extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert "MAX_QUERY_OVERLAPS" in error.message


def test_fragments_count_where_they_are_spread() -> None:
    fragment = "fragment F on Product { id name }"
    spread = "{ products { edges { node { ...F ...F ...F } } } } " + fragment
    document = parse(spread)

    # products, edges, node, then F's two fields three times, plus F's own definition
    assert document_selections(document) == 3 + 6 + 2
    # id and name each three times at one place: three pairs each
    assert overlapping_pairs(document) == 6


def test_fields_at_different_places_are_not_pairs() -> None:
    document = parse(
        "{ a: products { edges { node { id } } } b: products { edges { node { id } } } }"
    )
    assert overlapping_pairs(document) == 0


def test_exponential_fragment_nesting_is_counted_without_expanding_it(
    validation_must_not_run: None,
) -> None:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    query = "{ ...F0 } " + " ".join(fragments) + " fragment F40 on Query { __typename }"

    [error] = _preparer().prepare(query).errors

    assert "MAX_QUERY_SELECTIONS" in error.message


def test_the_default_token_limit_refuses_the_documents_that_cost_validation_most(
    validation_must_not_run: None,
) -> None:
    # bench.validation's costliest families grow with tokens, not with fields: a long list
    # argument or twenty root fields with sub-trees stay within the selection and overlap
    # limits, so the token limit (1000) is what keeps their validation near 15 ms.
    items = ", ".join('{productId: "UHJvZHVjdDox", quantity: 1}' for _ in range(130))
    long_list = f"mutation {{ createOrder(input: {{items: [{items}]}}) {{ order {{ id }} }} }}"
    sub_tree = (
        "edges { node { id email createdAt profile { displayName firstName lastName } "
        "orders { edges { node { id status total { amount currency } "
        "items { quantity product { id name sku } } } } } } }"
    )
    root_fields = "{ " + " ".join(f"a{i}: users(first: {i}) {{ {sub_tree} }}" for i in range(20))
    preparer = _preparer()

    for query in (long_list, root_fields + " }"):
        [error] = preparer.prepare(query).errors
        assert error.extensions == {"code": "QUERY_TOO_COMPLEX"}
        assert "MAX_QUERY_TOKENS" in error.message
        assert "1000" in error.message


def test_the_full_introspection_query_fits_the_default_limits() -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    assert _preparer(introspection=True).prepare(query).errors == ()


async def test_new_documents_are_validated_off_the_event_loop() -> None:
    preparer = _preparer()
    threads: list[threading.Thread] = []
    original = preparer._prepare

    def spy(query: str) -> documents.Prepared:
        threads.append(threading.current_thread())
        return original(query)

    preparer._prepare = spy  # type: ignore[method-assign]
    query = "{ products { edges { node { id name } } } }"

    first = await preparer.prepare_off_loop(query)
    again = await preparer.prepare_off_loop(query)

    assert first.errors == ()
    assert again is first, "cached after the first time"
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()
    assert threads[0].name.startswith("graphql-validation")
