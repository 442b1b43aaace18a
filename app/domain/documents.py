"""Trusted documents and the manifests that list them (Apollo's and Relay's formats)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_ID = 200


class ManifestError(ValueError):
    """The manifest cannot be registered as it is; nothing from it was."""


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256(value: str) -> bool:
    return _SHA256.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    id: str
    body: str
    name: str | None = None

    @property
    def sha256(self) -> str:
        return sha256_of(self.body)


def _document(id_: Any, body: Any, name: Any, where: str) -> TrustedDocument:
    if not isinstance(id_, str) or not id_ or len(id_) > MAX_ID:
        raise ManifestError(f"{where}: the id must be a non-empty string of at most {MAX_ID}")
    if not isinstance(body, str) or not body.strip():
        raise ManifestError(f"{where}: the body must be a non-empty string")
    if name is not None and not isinstance(name, str):
        raise ManifestError(f"{where}: the name must be a string")
    document = TrustedDocument(id_, body, name[:200] if name else None)
    # Apollo's ids are the body's SHA-256; one that is not would let a client run a text other
    # than the one its hash names.
    if is_sha256(id_) and id_ != document.sha256:
        raise ManifestError(f"{where}: the id is a SHA-256 but not the body's")
    return document


def parse_manifest(raw: Any) -> list[TrustedDocument]:
    """Apollo's persisted query manifest (`{"format": "apollo-persisted-query-manifest",
    "version": 1, "operations": [{"id", "name", "type", "body"}]}`) or Relay's (`{id: text}`)."""
    if not isinstance(raw, dict):
        raise ManifestError("a manifest is a JSON object")
    if raw.get("format") == "apollo-persisted-query-manifest":
        if raw.get("version") != 1:
            raise ManifestError("only version 1 of Apollo's manifest format is known")
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise ManifestError("`operations` must be a list")
        documents = []
        for index, operation in enumerate(operations):
            if not isinstance(operation, dict):
                raise ManifestError(f"operation {index}: must be an object")
            documents.append(
                _document(
                    operation.get("id"),
                    operation.get("body"),
                    operation.get("name"),
                    f"operation {index}",
                )
            )
        return documents
    if "format" in raw:
        raise ManifestError(f"unknown manifest format {str(raw['format'])[:100]!r}")
    return [_document(id_, body, None, f"document {id_!r}"[:120]) for id_, body in raw.items()]
