"""An export's SQL is compiled once per shape (``store.reader.driver_sql``): each call still binds its own values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.engine import Dialect

from vpbx.services.history import external_filter
from vpbx.store import reader
from vpbx.store.repositories.calls import EXTERNAL_CSV_COLUMNS, EXTERNAL_EXPORT_COLUMNS, external_query

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
filters = st.fixed_dictionaries({}, optional={
    "period": st.sampled_from(["today", "yesterday", "this_week", "last_month"]),
    "groups": st.lists(st.sampled_from(["sales", "support", "a,b"]), max_size=3),
    "user": st.sampled_from(["ivan", "anna"]),
    "type": st.sampled_from(["all", "in", "out", "missed"]),
    "limit": st.integers(0, 10**6),
    "missed_status": st.lists(st.sampled_from(["1", "2", "3", "4"]), max_size=3),
    "client": st.sampled_from(["7916", "74951234567"]),
})


def fresh(stmt: object, dialect: Dialect) -> tuple[str, tuple[object, ...]]:
    reader._COMPILED.clear()
    return reader.driver_sql(stmt, dialect)  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), asyncpg.dialect()], ids=["sqlite", "postgres"])
@settings(max_examples=60, deadline=None)
@given(first=filters, second=filters, domains=st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)))
def test_a_cached_statement_binds_each_calls_values(dialect: Dialect, first: dict[str, Any],
                                                    second: dict[str, Any], domains: tuple[int, int]) -> None:
    for columns in (EXTERNAL_EXPORT_COLUMNS, EXTERNAL_CSV_COLUMNS):
        a = external_query(domains[0], external_filter(now=NOW, timezone="Europe/Moscow", **first), columns)
        b = external_query(domains[1], external_filter(now=NOW, timezone="Europe/Moscow", **second), columns)
        expected_b = fresh(b, dialect)
        reader.driver_sql(a, dialect)  # the first call of a shape compiles it
        assert reader.driver_sql(b, dialect) == expected_b  # the second binds its own values into what is kept
