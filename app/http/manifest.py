"""Checking a manifest of trusted documents before an operator registers it.

The check needs the server's own document preparer, so it sits at the edge beside what serves
the documents (app.http.persisted); registering them is a use case
(app.usecases.operators.register_documents) in one unit of work like any other change."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLSchema

from app.config import GraphQLLimits
from app.domain.documents import ManifestError, TrustedDocument
from app.http.documents import DocumentPreparer


def check_documents(
    schema: GraphQLSchema, limits: GraphQLLimits, documents: Sequence[TrustedDocument]
) -> None:
    """Every document must be one the server would run: a manifest with one that is not (a
    stale build, another schema) is refused whole, so no client ships half its operations."""
    # Introspection is allowed here: a registered document is the operator's decision.
    preparer = DocumentPreparer(schema, limits)
    for document in documents:
        prepared = preparer.prepare(document.body)
        if prepared.errors:
            label = document.name or document.id
            raise ManifestError(f"{label[:100]}: {prepared.errors[0].message}")
