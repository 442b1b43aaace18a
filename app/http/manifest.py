"""Registering trusted documents (an operator's change, from a manifest).

It checks documents with the server's own preparer and writes them through the trusted-documents
repository, so it sits at the edge beside what serves them (app.http.persisted), not among the
use cases, which reach storage only through the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from graphql import GraphQLSchema

from app.config import GraphQLLimits
from app.db.engine import Database
from app.domain.documents import ManifestError, TrustedDocument
from app.http.documents import DocumentPreparer
from app.repositories import trusted_documents


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


async def register_documents(db: Database, documents: Sequence[TrustedDocument]) -> int:
    """Register, in one transaction, the documents not registered yet; how many were new."""
    async with db.write() as conn:
        return await trusted_documents.add(conn, documents, datetime.now(UTC))
