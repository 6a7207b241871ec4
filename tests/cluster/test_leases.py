"""Leases at the store: a node renews only what it holds, and gives up a lease left in its name that it does not
hold (a release or claim that failed half way, domains dropped while it was cut off) — renewing it would keep the
domain from every other node, with nobody serving it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from vpbx.store import db
from vpbx.store.repositories import cluster as repo
from vpbx.testing.postgres import empty_database, url_for_tests


@pytest.fixture
def pg_url() -> str:
    url = url_for_tests()
    if not url:
        pytest.skip("no PostgreSQL")
    return empty_database(url, "_leases")


async def test_a_lease_the_node_does_not_hold_is_given_up(pg_url: str) -> None:
    engine = db.create_engine(pg_url)
    try:
        await db.upgrade(engine)
        async with engine.begin() as conn:
            for name in ("a.test", "b.test", "c.test"):
                await conn.execute(text("INSERT INTO domains (name, timezone, limit_users, limit_groups, "
                                        "limit_local_gw, service_record, service_local_gw, service_branch, "
                                        "version, created_at) VALUES (:n, 'Europe/Moscow', -1, -1, -1, false, "
                                        "false, false, 1, now())"), {"n": name})
            ids = await repo.domain_ids(conn)
            tokens = {d: await repo.claim(conn, d, "node-1", 30.0) for d in ids}
        assert all(t is not None for t in tokens.values())
        kept, zombie, other = ids
        async with engine.begin() as conn:
            assert await repo.claim(conn, other, "node-2", 30.0) is None  # node-1 holds it: no
            held = await repo.renew(conn, "node-1", 30.0, [kept, other])
        assert held == {kept: tokens[kept], other: tokens[other]}
        async with engine.begin() as conn:
            # the lease node-1 left behind is free at once, with a new token for its next owner
            assert await repo.claim(conn, zombie, "node-2", 30.0) == (tokens[zombie] or 0) + 1
            assert await repo.renew(conn, "node-1", 30.0, [kept, other]) == held  # and node-1 keeps what it holds
            assert await repo.claim(conn, kept, "node-2", 30.0) is None
    finally:
        await engine.dispose()
