"""Reliability fixtures: a fresh store per test (SQLite, and PostgreSQL when VPBX_TEST_PG_URL is set) and a
loopback CRM receiver (``tests.notify.conftest.Receiver``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.notify.conftest import Receiver

from vpbx.testing.postgres import SKIP_REASON, empty_database, url_for_tests

PG_URL = url_for_tests()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vpbx.db'}"
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    return empty_database(PG_URL)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
