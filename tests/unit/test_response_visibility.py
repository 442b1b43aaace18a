"""Which GraphQL operations the response cache may keep: catalogue reads only."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse

from app.cache.responses import public_operation


@pytest.mark.parametrize(
    ("text", "public"),
    [
        ("{ products(first: 2) { edges { node { sku } } } }", True),
        ('query { a: product(id: "x") { name } __typename }', True),
        ("query { ...Cat } fragment Cat on Query { products { totalCount } }", True),
        ("{ ... on Query { product(id: 1) { sku } } }", True),
        ("{ me { id } }", False),
        ("{ products { totalCount } me { id } }", False),
        ("query { ...Mine } fragment Mine on Query { me { id } }", False),
        ('{ node(id: "x") { id } }', False),
        ("{ orders { totalCount } }", False),
        ("query { ...Loop } fragment Loop on Query { ...Loop }", False),
        ("query { ...Missing }", False),
        ("mutation { restockProduct(id: 1, quantity: 1) { product { stock } } }", False),
    ],
)
def test_only_catalogue_reads_are_public(text: str, public: bool) -> None:
    document = parse(text)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    assert public_operation(document, operation) is public
