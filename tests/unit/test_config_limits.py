from __future__ import annotations

import pytest

from app.config import ConfigError, GraphQLLimits, Settings


def test_defaults() -> None:
    limits = Settings.from_env({}).graphql

    assert limits == GraphQLLimits()
    assert limits.max_depth == 12
    assert limits.max_batch == 0
    assert limits.introspection is False


def test_every_limit_comes_from_the_environment() -> None:
    env = {
        "MAX_BODY_BYTES": "4096",
        "MAX_QUERY_LENGTH": "1000",
        "MAX_QUERY_TOKENS": "300",
        "MAX_QUERY_DEPTH": "5",
        "MAX_QUERY_ALIASES": "0",
        "MAX_ROOT_FIELDS": "3",
        "MAX_BATCH_OPERATIONS": "10",
        "EXECUTION_TIMEOUT": "2.5",
        "INTROSPECTION": "true",
        "DOCUMENT_CACHE_SIZE": "0",
    }

    assert Settings.from_env(env).graphql == GraphQLLimits(
        max_body_bytes=4096,
        max_query_length=1000,
        max_tokens=300,
        max_depth=5,
        max_aliases=0,
        max_root_fields=3,
        max_batch=10,
        execution_timeout=2.5,
        introspection=True,
        document_cache_size=0,
    )


def test_introspection_follows_debug_unless_set() -> None:
    assert Settings.from_env({"DEBUG": "true"}).graphql.introspection is True
    assert (
        Settings.from_env({"DEBUG": "true", "INTROSPECTION": "off"}).graphql.introspection is False
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_QUERY_DEPTH", "0"),
        ("MAX_QUERY_DEPTH", "deep"),
        ("MAX_BODY_BYTES", "10"),
        ("MAX_BATCH_OPERATIONS", "-1"),
        ("EXECUTION_TIMEOUT", "0"),
        ("EXECUTION_TIMEOUT", "soon"),
        ("INTROSPECTION", "maybe"),
    ],
)
def test_bad_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_limit_defaults_to_the_pool_size_and_comes_from_the_environment() -> None:
    assert Settings.from_env({}).graphql.max_concurrent_operations == 10
    assert Settings.from_env({"DB_POOL_SIZE": "4"}).graphql.max_concurrent_operations == 4
    env = {"DB_POOL_SIZE": "4", "MAX_CONCURRENT_OPERATIONS": "2"}
    assert Settings.from_env(env).graphql.max_concurrent_operations == 2
