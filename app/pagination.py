"""Keyset pagination: page requests, opaque cursors and pages.

Keyset cursors stay correct while rows are inserted between requests and cost the same on the
thousandth page as on the first, which offsets do not.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from app.errors import BadUserInput

MAX_PAGE_SIZE = 100
T = TypeVar("T")

# A timestamp-and-id keyset, for collections ordered by creation time.
TimeKey = tuple[datetime, UUID]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    has_previous: bool
    total: int | None = None


DEFAULT_PAGE_SIZE = 20


def check_first(first: int | None) -> int:
    """A page size in range; null means the default, as if `first` had not been given."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(f"`first` must be between 0 and {MAX_PAGE_SIZE}, not {first}")
    return first


def _encode(kind: str, payload: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}|{payload}".encode()).decode().rstrip("=")


def _decode(kind: str, cursor: str) -> str:
    invalid = BadUserInput(f"`after` is not a valid cursor for this list: {cursor[:64]!r}")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    prefix, sep, payload = text.partition("|")
    if prefix != kind or not sep or "\x00" in payload:
        raise invalid
    return payload


def encode_time_cursor(kind: str, key: TimeKey) -> str:
    created_at, id_ = key
    return _encode(kind, f"{created_at.astimezone(UTC).isoformat()}|{id_.hex}")


def decode_time_cursor(kind: str, cursor: str) -> TimeKey:
    payload = _decode(kind, cursor)
    stamp, _, hex_id = payload.partition("|")
    invalid = BadUserInput(f"`after` is not a valid cursor for this list: {cursor[:64]!r}")
    try:
        created_at = datetime.fromisoformat(stamp)
        id_ = UUID(hex=hex_id)
        if created_at.tzinfo is None:
            raise invalid
        # In UTC, as stored; an instant whose UTC form leaves years 1..9999 (such as
        # 0001-01-01T00:00:00+14:00) overflows here instead of in the driver.
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid from None
    return created_at, id_


def encode_text_cursor(kind: str, key: str) -> str:
    return _encode(kind, key)


def decode_text_cursor(kind: str, cursor: str) -> str:
    return _decode(kind, cursor)
