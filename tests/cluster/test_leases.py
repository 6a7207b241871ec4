"""Leases at the store: a node renews only what it holds, and gives up a lease left in its name that it does not
hold (a release or claim that failed half way, domains dropped while it was cut off) — renewing it would keep the
domain from every other node, with nobody serving it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from sqlalchemy import text

from vpbx.cluster.ownership import store_engine
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


async def test_a_node_cut_off_mid_step_does_not_hold_its_leases(pg_url: str) -> None:
    """A step that updated its lease rows and then lost the store (its transaction left open on the server) must
    not keep another node's claim waiting past the lease: the flake of the netns link-down test."""
    ttl = 1.0
    setup = db.create_engine(pg_url)
    stuck, other = store_engine(pg_url, ttl), store_engine(pg_url, ttl)
    try:
        await db.upgrade(setup)
        async with setup.begin() as conn:
            await conn.execute(text("INSERT INTO domains (name, timezone, limit_users, limit_groups, "
                                    "limit_local_gw, service_record, service_local_gw, service_branch, "
                                    "version, created_at) VALUES ('a.test', 'Europe/Moscow', -1, -1, -1, false, "
                                    "false, false, 1, now())"))
            (domain,) = await repo.domain_ids(conn)
            first = await repo.claim(conn, domain, "node-1", ttl)
        conn = await stuck.connect()
        await conn.begin()
        assert await repo.renew(conn, "node-1", ttl, [domain]) == {domain: first}  # the row is locked, never committed
        began = time.monotonic()
        while True:  # the claim fails while the lease is live, then must get through: no wait on the lock
            async with other.begin() as c2:
                token = await asyncio.wait_for(repo.claim(c2, domain, "node-2", ttl), 5 * ttl)
            if token is not None:
                break
            assert time.monotonic() - began < 5 * ttl, "the lease never came free"
            await asyncio.sleep(0.05)
        assert token == (first or 0) + 1
        with contextlib.suppress(Exception):
            await conn.close()
    finally:
        for engine in (setup, stuck, other):
            await engine.dispose()
