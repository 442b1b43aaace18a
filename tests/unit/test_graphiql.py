"""When a request is a browser asking for GraphiQL, and how its config is embedded in the page."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from app.config import ConfigError, Settings
from app.http.graphiql import _accepts_html, _json_for_html


def _request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/graphql", "headers": headers})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chrome
        ("TEXT/HTML", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html; q=0", False),
        ("text/html;q=0.0", False),
        ("text/html;q=bogus", False),
        ("text/htmlx", False),
        ("application/json", False),
        ("application/graphql-response+json, application/json;q=0.9", False),
        ("*/*", False),  # curl: a GraphQL client, not a browser
        ("", False),
        (None, False),
    ],
)
def test_accepts_html(accept: str | None, expected: bool) -> None:
    assert _accepts_html(_request(accept)) is expected


def test_embedded_json_cannot_end_its_script_element() -> None:
    value = {"q": "</script><script>alert(1)</script><!-- & -->"}

    text = _json_for_html(value)

    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert json.loads(text) == value


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("false", False), ("1", True)])
def test_graphiql_setting(raw: str | None, expected: bool) -> None:
    env = {} if raw is None else {"GRAPHIQL": raw}
    assert Settings.from_env(env).graphiql is expected


def test_graphiql_setting_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="GRAPHIQL"):
        Settings.from_env({"GRAPHIQL": "sometimes"})
