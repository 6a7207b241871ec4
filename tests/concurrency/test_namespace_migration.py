"""Revision 0012 on a store that earlier check-then-insert writers left inconsistent: two owners of one extension,
an extensions table out of step with its owners, one number in two domains."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import store_url

from vpbx.store import db


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(str(request.param), tmp_path)  # an empty database (sync: it may create one)


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    eng = db.create_engine(url)
    yield eng
    await eng.dispose()


def _insert(conn: sa.Connection, table_name: str, /, **values: Any) -> int:
    """A row with ``values``; every other required column gets a plain value of its type."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    row = dict(values)
    for col in table.columns:
        if col.name in row or col.nullable or col.server_default is not None or col.primary_key:
            continue
        python = col.type.python_type
        row[col.name] = {int: 0, str: "", bool: False, datetime: datetime(2026, 1, 1)}.get(python, "")
    result = conn.execute(table.insert().values(row))
    return int(result.inserted_primary_key[0]) if result.inserted_primary_key else 0


def _seed(conn: sa.Connection) -> dict[str, int]:
    ids = {"d1": _insert(conn, "domains", name="one.test", timezone="Europe/Moscow", limit_users=-1,
                         limit_groups=-1, version=0)}
    ids["d2"] = _insert(conn, "domains", name="two.test", timezone="Europe/Moscow", limit_users=-1, limit_groups=-1,
                        version=0)
    ids["a"] = _insert(conn, "users", domain_id=ids["d1"], login="a", name="A", ext="701", password_hash="x")
    ids["b"] = _insert(conn, "users", domain_id=ids["d1"], login="b", name="B", ext="701", password_hash="x")
    ids["c"] = _insert(conn, "users", domain_id=ids["d1"], login="c", name="C", ext="702", password_hash="x")
    ids["g"] = _insert(conn, "groups", domain_id=ids["d1"], group_id="sales", name="G", ext="701")
    ids["h"] = _insert(conn, "users", domain_id=ids["d2"], login="a", name="A2", ext="701", password_hash="x")
    # The table names B; C and the second domain's employee are missing from it.
    _insert(conn, "extensions", domain_id=ids["d1"], ext="701", owner_kind="user", owner_id=ids["b"])
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    for domain in ("d1", "d2"):
        for number in ("74990000001", "74951234567"):  # a real number twice; the demo company's main number
            ids[f"{domain}:{number}"] = _insert(conn, "telnums", domain_id=ids[domain], telnum=number, created_at=now)
    return ids


@pytest.mark.postgres
async def test_0012_keeps_one_owner_per_extension_and_one_domain_per_number(engine: AsyncEngine) -> None:
    await db.upgrade(engine, "0003")
    async with engine.begin() as conn:
        ids = await conn.run_sync(_seed)
    await db.upgrade(engine, "0012")
    async with engine.connect() as conn:
        users = {r.login + str(r.domain_id): r.ext for r in await conn.execute(sa.text(
            "SELECT login, domain_id, ext FROM users"))}
        groups = {r.group_id: r.ext for r in await conn.execute(sa.text("SELECT group_id, ext FROM groups"))}
        claims = sorted(tuple(r) for r in await conn.execute(sa.text(
            "SELECT domain_id, ext, owner_kind, owner_id FROM extensions")))
        numbers = sorted(tuple(r) for r in await conn.execute(sa.text(
            "SELECT domain_id, telnum, example FROM telnums")))
    d1, d2 = ids["d1"], ids["d2"]
    # B keeps 701 (the table named it); A, then the department, get the lowest free ones; C and the other
    # domain keep theirs.
    assert users == {f"b{d1}": "701", f"a{d1}": "700", f"c{d1}": "702", f"a{d2}": "701"}
    assert groups == {"sales": "703"}
    assert claims == sorted([(d1, "700", "user", ids["a"]), (d1, "701", "user", ids["b"]),
                             (d1, "702", "user", ids["c"]), (d1, "703", "group", ids["g"]),
                             (d2, "701", "user", ids["h"])])
    assert numbers == sorted([(d1, "74990000001", False), (d1, "74951234567", True), (d2, "74951234567", True)])
    await db.upgrade(engine)  # every other revision still applies on top
    async with engine.begin() as conn:
        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(sa.text("UPDATE users SET ext = '701' WHERE id = :a"), {"a": ids["a"]})
    async with engine.begin() as conn:
        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(sa.text("UPDATE telnums SET domain_id = :d2, telnum = '74990000001', example = :f "
                                       "WHERE id = :t"), {"d2": d2, "f": False, "t": ids["d2:74951234567"]})
