"""Choosing the response media type from a request's Accept header (RFC 9110, section 12.5.1)."""

from __future__ import annotations

from functools import lru_cache

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
HTML = "text/html"


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for item in accept.split(","):
        media_range, *params = item.split(";")
        media_range = media_range.strip().lower()
        if not media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        ranges.append((media_range, quality))
    return ranges


def _quality(ranges: list[tuple[str, float]], offer: str, wildcards: bool) -> float:
    """The quality the most specific matching range gives `offer`; 0 when none matches."""
    kind = offer.split("/")[0]
    best_specificity, best_quality = -1, 0.0
    for media_range, quality in ranges:
        if media_range == offer:
            specificity = 2
        elif wildcards and media_range == f"{kind}/*":
            specificity = 1
        elif wildcards and media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_quality = specificity, quality
    return best_quality


def choose_media_type(accept: str | None, html: bool = False) -> str | None:
    """See `_choose`; a client sends the same Accept header with every request, so the choice
    is remembered for the usual, short ones."""
    if accept is not None and len(accept) > _REMEMBERED_LENGTH:
        return _choose(accept, html)
    return _remembered(accept, html)


_REMEMBERED_LENGTH = 256


def _choose(accept: str | None, html: bool = False) -> str | None:
    """The media type to answer in, or None when the client accepts nothing the server offers.

    No Accept header means application/json, as does a wildcard: the GraphQL-over-HTTP spec's
    legacy-compatible default, which every client understands. application/graphql-response+json
    (whose status codes say whether the request was valid) is chosen only when asked for by name,
    and wins a tie with application/json. text/html is offered only when a page can answer it.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    offers = [
        (_quality(ranges, GRAPHQL_RESPONSE_JSON, wildcards=False), 2, GRAPHQL_RESPONSE_JSON),
        (_quality(ranges, JSON, wildcards=True), 1, JSON),
    ]
    if html:
        # Browsers list text/html first and */* last; a page is served only when named.
        offers.append((_quality(ranges, HTML, wildcards=False), 3, HTML))
    quality, _, media_type = max(offers)
    return media_type if quality > 0 else None


_remembered = lru_cache(maxsize=256)(_choose)
