"""Persisted queries (Apollo's protocol) and trusted documents, without I/O."""

from __future__ import annotations

from typing import Any, cast
from uuid import uuid4

import pytest

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.config import PersistedQueryMode, PersistedQuerySettings
from app.domain.documents import ManifestError, parse_manifest, sha256_of
from app.http.document_store import MemoryDocumentStore
from app.http.errors import ErrorCode
from app.http.persisted import PersistedQueries, Resolved, TrustedDocuments, Unresolved

QUERY = "{ products(first: 2) { edges { node { sku } } } }"
HASH = sha256_of(QUERY)
REGISTERED = "query Registered { me { id } }"
PARTNER = Principal(PrincipalKind.CLIENT, client_id="partner")
FIRST_PARTY = Principal(PrincipalKind.CLIENT, client_id="web")
PARTNER_USER = uuid4()


class Trusted:
    """Stands in for the database's trusted documents."""

    def __init__(self, *texts: str) -> None:
        self.texts = {sha256_of(text): text for text in texts}

    async def find(self, key: str) -> str | None:
        return self.texts.get(key)


def persisted_query(hash_: str = HASH) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hash_}}


def queries(mode: PersistedQueryMode, store_size: int = 10) -> PersistedQueries:
    settings = PersistedQuerySettings(mode=mode, open_clients=frozenset({"partner"}))
    return PersistedQueries(
        settings, MemoryDocumentStore(store_size), cast(TrustedDocuments, Trusted(REGISTERED))
    )


async def test_apq_hash_first_then_hash_and_text_then_hash_alone() -> None:
    apq = queries(PersistedQueryMode.APQ)

    missing = await apq.resolve(None, persisted_query(), ANONYMOUS)
    assert missing == Unresolved("PersistedQueryNotFound", ErrorCode.PERSISTED_QUERY_NOT_FOUND)
    assert await apq.resolve(QUERY, persisted_query(), ANONYMOUS) == Resolved(QUERY, True)
    assert await apq.resolve(None, persisted_query(), ANONYMOUS) == Resolved(QUERY, True)
    # Plain text still runs.
    assert await apq.resolve(QUERY, None, ANONYMOUS) == Resolved(QUERY, False)


async def test_the_hash_is_checked_against_the_text() -> None:
    apq = queries(PersistedQueryMode.APQ)

    wrong = await apq.resolve(QUERY, persisted_query(sha256_of("{ me { id } }")), ANONYMOUS)

    assert isinstance(wrong, Unresolved)
    assert wrong.code is ErrorCode.BAD_USER_INPUT
    # Nothing was registered under the wrong hash.
    assert isinstance(await apq.resolve(None, persisted_query(), ANONYMOUS), Unresolved)


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": HASH}},
        {"persistedQuery": {"version": 1, "sha256Hash": "abc"}},
        {"persistedQuery": {"version": 1, "sha256Hash": HASH.upper()}},
        {"persistedQuery": "yes"},
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_input(
    extensions: dict[str, Any],
) -> None:
    resolved = await queries(PersistedQueryMode.APQ).resolve(None, extensions, ANONYMOUS)
    assert isinstance(resolved, Unresolved)
    assert resolved.code is ErrorCode.BAD_USER_INPUT


async def test_off_does_not_support_hashes() -> None:
    off = queries(PersistedQueryMode.OFF)

    resolved = await off.resolve(QUERY, persisted_query(), ANONYMOUS)

    assert resolved == Unresolved(
        "PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED
    )
    assert await off.resolve(QUERY, None, ANONYMOUS) == Resolved(QUERY, False)


async def test_trusted_runs_only_registered_documents_for_first_parties() -> None:
    trusted = queries(PersistedQueryMode.TRUSTED)
    registered = persisted_query(sha256_of(REGISTERED))

    for principal in (ANONYMOUS, FIRST_PARTY):
        assert await trusted.resolve(None, registered, principal) == Resolved(REGISTERED, True)
        assert await trusted.resolve(REGISTERED, None, principal) == Resolved(REGISTERED, False)
        refused = await trusted.resolve(QUERY, None, principal)
        assert isinstance(refused, Unresolved)
        assert refused.code is ErrorCode.PERSISTED_QUERY_REQUIRED
        # Sending hash and text does not register anything in trusted mode.
        assert isinstance(await trusted.resolve(QUERY, persisted_query(), principal), Unresolved)
        assert isinstance(await trusted.resolve(None, persisted_query(), principal), Unresolved)


async def test_trusted_lets_open_third_parties_send_any_document() -> None:
    trusted = queries(PersistedQueryMode.TRUSTED)

    assert await trusted.resolve(QUERY, None, PARTNER) == Resolved(QUERY, False)
    assert await trusted.resolve(QUERY, persisted_query(), PARTNER) == Resolved(QUERY, True)
    assert await trusted.resolve(None, persisted_query(), PARTNER) == Resolved(QUERY, True)
    # A user signed in through the partner's app is not the partner itself.
    user = Principal(PrincipalKind.CUSTOMER, client_id="partner", user_id=PARTNER_USER)
    assert isinstance(await trusted.resolve(QUERY, None, user), Unresolved)


async def test_the_store_is_bounded() -> None:
    store = MemoryDocumentStore(2)
    for text in ("a", "b", "c"):
        await store.put(sha256_of(text), text)
    assert await store.get(sha256_of("a")) is None
    assert await store.get(sha256_of("c")) == "c"


def test_apollo_and_relay_manifests() -> None:
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_of(QUERY), "name": "Products", "type": "query", "body": QUERY},
        ],
    }
    [document] = parse_manifest(apollo)
    assert (document.id, document.name, document.body) == (HASH, "Products", QUERY)

    relay = {"a1b2c3": QUERY, sha256_of(REGISTERED): REGISTERED}
    assert [(d.id, d.sha256) for d in parse_manifest(relay)] == [
        ("a1b2c3", HASH),
        (sha256_of(REGISTERED), sha256_of(REGISTERED)),
    ]


@pytest.mark.parametrize(
    "manifest",
    [
        [],
        {"format": "something-else"},
        {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []},
        {"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id": "x"}]},
        # An id that is a SHA-256, but not the body's.
        {sha256_of("{ me { id } }"): QUERY},
        {"x": ""},
    ],
)
def test_bad_manifests_are_refused_whole(manifest: Any) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(manifest)
