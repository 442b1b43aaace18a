"""When a request is a browser asking for GraphiQL, and how its config is embedded in the page."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from app.config import ConfigError, Settings
from app.http.graphiql import _json_for_html
from app.http.negotiation import HTML, choose_media_type


def _request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/graphql", "headers": headers})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chrome
        ("TEXT/HTML", True),
        ("application/json, text/html;q=0.5", False),  # prefers JSON: a client, not a browser
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
def test_only_browsers_get_the_page(accept: str | None, expected: bool) -> None:
    assert (choose_media_type(accept, html=True) == HTML) is expected


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
