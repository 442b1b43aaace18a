from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from app.errors import BadUserInput
from app.pagination import (
    check_first,
    decode_text_cursor,
    decode_time_cursor,
    encode_text_cursor,
    encode_time_cursor,
)


def test_time_cursor_round_trips_with_microseconds() -> None:
    key = (datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC), uuid4())
    assert decode_time_cursor("user", encode_time_cursor("user", key)) == key


def test_text_cursor_round_trips_any_text() -> None:
    assert decode_text_cursor("product", encode_text_cursor("product", "SKU|ü 1")) == "SKU|ü 1"


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"user|yesterday|abc").decode(),
        base64.urlsafe_b64encode(b"user|2026-01-01T00:00:00|" + uuid4().hex.encode()).decode(),
        "",
    ],
)
def test_malformed_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput, match="not a valid cursor"):
        decode_time_cursor("user", cursor)


def test_a_cursor_of_another_list_is_refused() -> None:
    cursor = encode_time_cursor("order", (datetime.now(UTC), uuid4()))
    with pytest.raises(BadUserInput):
        decode_time_cursor("user", cursor)


@pytest.mark.parametrize("first", [-1, 101, 10**9])
def test_first_out_of_range_is_refused(first: int) -> None:
    with pytest.raises(BadUserInput, match="between 0 and 100"):
        check_first(first)


def test_first_bounds_and_null_default() -> None:
    assert [check_first(0), check_first(100), check_first(None)] == [0, 100, 20]
