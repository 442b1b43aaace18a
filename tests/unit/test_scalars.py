from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from resolvers.scalars import parse_datetime, serialize_datetime


def test_serializes_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 26, 13, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert serialize_datetime(moment) == "2026-11-26T12:00:00.123Z"


@pytest.mark.parametrize("raw", ["2026-11-26T12:00:00.000Z", "2026-11-26T14:00:00+02:00"])
def test_parses_instants_with_an_offset(raw: str) -> None:
    assert parse_datetime(raw) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2026-11-26T12:00:00", "no UTC offset"),
        ("soon", "not an ISO-8601"),
        (5, "must be an ISO-8601 string"),
    ],
)
def test_refuses_ambiguous_or_malformed_values(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_datetime(raw)
