"""Persisted queries: Apollo's automatic persisted queries, and trusted documents.

A request may name its document by hash instead of (or as well as) sending its text:
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`. What the server does with
it depends on PERSISTED_QUERIES:

- `off`: hashes are not understood (PERSISTED_QUERY_NOT_SUPPORTED; Apollo's link then sends text).
- `apq` (default): a hash alone runs the text stored under it, or gets PERSISTED_QUERY_NOT_FOUND;
  hash and text together register the text (the hash is checked against it) and run it.
- `trusted`: only documents registered from a manifest (`python -m app register-documents`) run,
  by hash or by text; other text gets PERSISTED_QUERY_REQUIRED. OAuth clients listed in
  PERSISTED_QUERIES_OPEN_CLIENTS (third parties) may still send any document, within their budget.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from app.auth import policy
from app.auth.principal import Principal
from app.config import PersistedQueryMode, PersistedQuerySettings
from app.db.engine import Database
from app.domain.documents import is_sha256, sha256_of
from app.http.document_store import DocumentStore
from app.http.errors import ErrorCode
from app.repositories import trusted_documents

VERSION = 1


@dataclass(frozen=True, slots=True)
class Resolved:
    """The text to run, and whether it came by hash (a persisted query)."""

    query: str
    persisted: bool


@dataclass(frozen=True, slots=True)
class Unresolved:
    """The request's document could not be had: an error entry's message and code."""

    message: str
    code: ErrorCode


class TrustedDocuments:
    """The registered documents, read from the database once each (they never change)."""

    def __init__(self, db: Database, max_entries: int) -> None:
        self._db = db
        self._max = max_entries
        self._known: OrderedDict[str, str] = OrderedDict()

    async def find(self, key: str) -> str | None:
        text = self._known.get(key)
        if text is not None:
            self._known.move_to_end(key)
            return text
        async with self._db.read() as conn:
            text = await trusted_documents.find(conn, key)
        if text is not None:
            self._known[key] = text
            while len(self._known) > self._max:
                self._known.popitem(last=False)
        return text


def _hash_of(extensions: dict[str, Any] | None) -> str | Unresolved | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if (
        not isinstance(persisted, dict)
        or persisted.get("version") != VERSION
        or not isinstance(persisted.get("sha256Hash"), str)
        or not is_sha256(persisted["sha256Hash"])
    ):
        return Unresolved(
            "`extensions.persistedQuery` must be {version: 1, sha256Hash: <64 hex digits>}",
            ErrorCode.BAD_USER_INPUT,
        )
    return str(persisted["sha256Hash"])


class PersistedQueries:
    def __init__(
        self,
        settings: PersistedQuerySettings,
        store: DocumentStore,
        trusted: TrustedDocuments,
    ) -> None:
        self.settings = settings
        self._store = store
        self._trusted = trusted

    def _open(self, principal: Principal) -> bool:
        """May this caller send documents nobody registered? (Only matters when trusted.)"""
        if self.settings.mode is not PersistedQueryMode.TRUSTED:
            return True
        return policy.may_send_unregistered_documents(principal, self.settings.open_clients)

    async def resolve(
        self, query: str | None, extensions: dict[str, Any] | None, principal: Principal
    ) -> Resolved | Unresolved:
        mode = self.settings.mode
        hash_ = _hash_of(extensions)
        if isinstance(hash_, Unresolved):
            return hash_
        if hash_ is None:
            if query is None:
                return Unresolved("The request has no `query`", ErrorCode.BAD_USER_INPUT)
            if self._open(principal) or await self._trusted.find(sha256_of(query)) is not None:
                return Resolved(query, persisted=False)
            return _required()
        if mode is PersistedQueryMode.OFF:
            return Unresolved("PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED)
        if query is not None:
            if sha256_of(query) != hash_:
                return Unresolved(
                    "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query`",
                    ErrorCode.BAD_USER_INPUT,
                )
            if self._open(principal):
                await self._store.put(hash_, query)
                return Resolved(query, persisted=True)
            if await self._trusted.find(hash_) is not None:
                return Resolved(query, persisted=True)
            return _required()
        text = await self._store.get(hash_) if self._open(principal) else None
        if text is None:
            text = await self._trusted.find(hash_)
        if text is None:
            return Unresolved("PersistedQueryNotFound", ErrorCode.PERSISTED_QUERY_NOT_FOUND)
        return Resolved(text, persisted=True)

    async def close(self) -> None:
        await self._store.close()


def _required() -> Unresolved:
    return Unresolved(
        "Only registered (trusted) documents run here: send a registered document's hash "
        "(PERSISTED_QUERIES=trusted)",
        ErrorCode.PERSISTED_QUERY_REQUIRED,
    )
