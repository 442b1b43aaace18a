from __future__ import annotations

import base64
from uuid import uuid4

import pytest

from app.errors import BadUserInput
from resolvers.global_id import from_global_id, pk_of, to_global_id


def test_round_trip() -> None:
    pk = uuid4()
    assert from_global_id(to_global_id("Order", pk)) == ("Order", pk)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "###",
        base64.b64encode(b"Order:not-a-uuid").decode(),
        base64.b64encode(b"Spaceship:" + str(uuid4()).encode()).decode(),
        base64.b64encode(b"Order" + str(uuid4()).encode()).decode(),
        base64.b64encode(b"Order:" + uuid4().hex.encode()).decode(),  # not the canonical form
        "A" * 500,
    ],
)
def test_malformed_ids_are_bad_user_input(raw: str) -> None:
    with pytest.raises(BadUserInput, match="not a valid ID"):
        from_global_id(raw)


def test_an_id_of_another_type_is_refused() -> None:
    with pytest.raises(BadUserInput, match="not of a User"):
        pk_of(to_global_id("Order", uuid4()), "User")
