from __future__ import annotations

import pytest

from app.http.negotiation import GRAPHQL_RESPONSE_JSON, HTML, JSON, choose_media_type


@pytest.mark.parametrize(
    ("accept", "html", "expected"),
    [
        (None, False, JSON),
        ("", False, JSON),
        ("*/*", False, JSON),
        ("application/*", False, JSON),
        ("APPLICATION/JSON", False, JSON),
        (GRAPHQL_RESPONSE_JSON, False, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON}, multipart/mixed", False, GRAPHQL_RESPONSE_JSON),
        (f"{JSON};q=0.9, {GRAPHQL_RESPONSE_JSON};q=0.8", False, JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.9, */*", False, JSON),
        (f"{JSON};q=0, */*", False, None),
        (f"{JSON};q=zero", False, None),
        (f"{JSON};q=2", False, None),
        ("text/html", False, None),
        ("text/plain, image/png", False, None),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True, HTML),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False, JSON),
        ("*/*", True, JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, text/html;q=0.5", True, GRAPHQL_RESPONSE_JSON),
    ],
)
def test_choose_media_type(accept: str | None, html: bool, expected: str | None) -> None:
    assert choose_media_type(accept, html=html) == expected
