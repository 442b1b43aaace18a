from __future__ import annotations

from app.config import PROJECT_ROOT
from resolvers.schema import schema


def test_schema_graphql_is_generated_from_the_code() -> None:
    committed = (PROJECT_ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql is stale: run `make schema`"
