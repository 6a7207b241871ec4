"""``make test`` finds the local PostgreSQL by itself (``VPBX_TEST_PG_URL`` unset), honours the variable when set
(``off``: none), and says how to enable the PostgreSQL half when there is none."""

from __future__ import annotations

import os
import time

import pytest
from tests import conftest

from vpbx.testing.postgres import LOCAL_TEST_URL, SKIP_REASON, answers, url_for_tests


def test_the_variable_wins() -> None:
    url = "postgresql+asyncpg://someone@db.example:5433/ci"
    assert url_for_tests({"VPBX_TEST_PG_URL": url}) == url
    assert url_for_tests({"VPBX_TEST_PG_URL": "off"}) == ""
    assert url_for_tests({"VPBX_TEST_PG_URL": " OFF "}) == ""


def test_nothing_listening_is_no_postgresql_and_answers_quickly() -> None:
    began = time.monotonic()
    assert not answers("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    assert time.monotonic() - began < 5


def test_the_local_server_is_found_when_it_answers() -> None:
    if not answers(LOCAL_TEST_URL):
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 here ({SKIP_REASON})")
    assert url_for_tests({}) == LOCAL_TEST_URL
    assert url_for_tests({"VPBX_TEST_PG_URL": ""}) == LOCAL_TEST_URL  # empty counts as unset


def test_every_suite_reads_the_same_url() -> None:
    assert os.environ["VPBX_TEST_PG_URL"] == conftest.PG_URL  # exported before the suites' conftests read it


def test_the_skip_reason_says_how_to_enable_it() -> None:
    assert "VPBX_TEST_PG_URL=postgresql+asyncpg://" in SKIP_REASON and "127.0.0.1:5432" in SKIP_REASON
