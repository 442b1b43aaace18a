"""The query cache's key for a statement (app.cache.query.statement_key), without I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, create_engine, select
from sqlalchemy.engine import Engine

from app.cache.query import statement_key
from app.db.sql import one_of
from app.db.tables import products

A = UUID("00000000-0000-4000-8000-00000000000a")
B = UUID("00000000-0000-4000-8000-00000000000b")


@dataclass
class _Db:
    engine: Engine
    dialect: str


SQLITE: Any = _Db(create_engine("sqlite://"), "sqlite")
POSTGRES: Any = _Db(create_engine("postgresql+asyncpg://x@localhost/x"), "postgresql")


def test_the_key_follows_the_values_a_statement_holds() -> None:
    def by_sku(sku: str) -> Any:
        return select(products.c.id).where(products.c.sku == sku)

    assert statement_key(SQLITE, by_sku("a")) == statement_key(SQLITE, by_sku("a"))
    assert statement_key(SQLITE, by_sku("a")) != statement_key(SQLITE, by_sku("b"))
    # The same shape with the same values, written twice, is one entry; a list is by its values.
    listed = select(products.c.id).where(one_of(products.c.id, [A, B]))
    assert statement_key(SQLITE, listed) == statement_key(
        SQLITE, select(products.c.id).where(one_of(products.c.id, [A, B]))
    )
    assert statement_key(SQLITE, listed) != statement_key(
        SQLITE, select(products.c.id).where(one_of(products.c.id, [A]))
    )


def test_the_key_follows_the_parameters_a_statement_runs_with() -> None:
    stmt = select(products.c.id).where(one_of(products.c.id, bindparam("ids")))
    assert statement_key(SQLITE, stmt, {"ids": [A, B]}) == statement_key(
        SQLITE, stmt, {"ids": [A, B]}
    )
    assert statement_key(SQLITE, stmt, {"ids": [A, B]}) != statement_key(SQLITE, stmt, {"ids": [A]})
    assert statement_key(SQLITE, stmt, {"ids": [A]}) != statement_key(SQLITE, stmt)


def test_the_key_follows_the_shape_and_the_database() -> None:
    by_sku = select(products.c.id).where(products.c.sku == "a")
    by_name = select(products.c.id).where(products.c.name == "a")
    assert statement_key(SQLITE, by_sku) != statement_key(SQLITE, by_name)
    assert statement_key(SQLITE, by_sku) != statement_key(POSTGRES, by_sku)
    assert statement_key(SQLITE, by_sku).startswith("q:")
