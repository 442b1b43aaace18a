"""Opaque global IDs: base64 of "Type:uuid", so clients never build or parse them."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from app.errors import BadUserInput

NODE_TYPES = frozenset({"User", "Product", "Order", "ApiKey"})


def to_global_id(type_name: str, pk: UUID) -> str:
    """Kept per process (bounded): a page of orders names the same products hundreds of times,
    and each encoding formats a UUID in Python."""
    key = (type_name, pk)
    found = _ENCODED.get(key)
    if found is None:
        if len(_ENCODED) >= _MAX_ENCODED:
            _ENCODED.clear()  # a bound on memory; the next IDs fill it again
        found = _ENCODED[key] = binascii.b2a_base64(
            f"{type_name}:{pk}".encode(), newline=False
        ).decode()
    return found


_ENCODED: dict[tuple[str, UUID], str] = {}
_MAX_ENCODED = 20_000


def from_global_id(global_id: str) -> tuple[str, UUID]:
    """The type and key of a well-formed ID, or BAD_USER_INPUT."""
    malformed = BadUserInput(f"{global_id[:80]!r} is not a valid ID")
    if len(global_id) > 200:
        raise malformed
    try:
        text = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        raise malformed from None
    type_name, sep, raw_pk = text.partition(":")
    if not sep or type_name not in NODE_TYPES | {"OrderItem"}:
        raise malformed
    try:
        pk = UUID(raw_pk)
    except ValueError:
        raise malformed from None
    if to_global_id(type_name, pk) != global_id:
        raise malformed  # only the canonical spelling, so one object has one ID
    return type_name, pk


def pk_of(global_id: str, expected_type: str) -> UUID:
    type_name, pk = from_global_id(global_id)
    if type_name != expected_type:
        raise BadUserInput(
            f"{global_id[:80]!r} is the ID of a {type_name}, not of a {expected_type}"
        )
    return pk
