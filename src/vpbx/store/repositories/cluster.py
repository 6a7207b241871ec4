"""The SQL of a cluster (``vpbx.cluster``): node heartbeats and per-domain leases with fencing tokens.

PostgreSQL only (a SQLite store is one process: no cluster). Every time is the database's ``clock_timestamp()``:
nodes' clocks may differ or be virtual. Statements run on a plain connection (not an ORM session), so they never
count as configuration changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from vpbx.store.tables.cluster import DomainLease

_LEASES = DomainLease.__table__


@dataclass(frozen=True)
class Lease:
    domain_id: int
    node_id: str
    token: int
    live: bool  # not expired
    url: str  # the owner's URL ("" when its node row is gone)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Node:
    node_id: str
    url: str


async def beat(conn: AsyncConnection, node_id: str, url: str) -> None:
    """Register the node or move its heartbeat."""
    await conn.execute(text(
        "INSERT INTO cluster_nodes (node_id, url, started_at, beat_at) "
        "VALUES (:n, :u, clock_timestamp() AT TIME ZONE 'UTC', clock_timestamp() AT TIME ZONE 'UTC') "
        "ON CONFLICT (node_id) DO UPDATE SET beat_at = EXCLUDED.beat_at, url = EXCLUDED.url"), {"n": node_id, "u": url})


async def live_nodes(conn: AsyncConnection, within: float) -> list[Node]:
    """Nodes whose heartbeat is younger than ``within`` seconds, in a stable order."""
    rows = await conn.execute(text(
        "SELECT node_id, url FROM cluster_nodes "
        "WHERE beat_at > clock_timestamp() AT TIME ZONE 'UTC' - make_interval(secs => :w) ORDER BY node_id"),
        {"w": within})
    return [Node(r.node_id, r.url) for r in rows]


async def forget_node(conn: AsyncConnection, node_id: str) -> None:
    await conn.execute(text("DELETE FROM cluster_nodes WHERE node_id = :n"), {"n": node_id})


async def forget_dead_nodes(conn: AsyncConnection, older_than: float) -> None:
    """Rows of nodes gone for long (they hold no lease that has not expired long ago)."""
    await conn.execute(text(
        "DELETE FROM cluster_nodes WHERE beat_at < clock_timestamp() AT TIME ZONE 'UTC' - make_interval(secs => :s)"),
        {"s": older_than})


async def domain_ids(conn: AsyncConnection) -> list[int]:
    return [int(r[0]) for r in await conn.execute(text("SELECT id FROM domains ORDER BY id"))]


async def leases(conn: AsyncConnection, domains: Iterable[int] | None = None) -> list[Lease]:
    """Every lease (or those of ``domains``) with its owner's URL."""
    sql = ("SELECT l.domain_id, l.node_id, l.token, l.expires_at > clock_timestamp() AT TIME ZONE 'UTC' AS live, "
           "coalesce(n.url, '') AS url, l.expires_at "
           "FROM domain_leases l LEFT JOIN cluster_nodes n ON n.node_id = l.node_id")
    params: dict[str, object] = {}
    if domains is not None:
        sql += " WHERE l.domain_id = ANY(CAST(:ds AS integer[]))"
        params["ds"] = list(domains)
    rows = await conn.execute(text(sql), params)
    return [Lease(int(r.domain_id), r.node_id, int(r.token), bool(r.live), r.url, r.expires_at) for r in rows]


async def renew(conn: AsyncConnection, node_id: str, ttl: float, keep: Iterable[int]) -> dict[int, int]:
    """Extend the leases the node holds (``keep``: the domains it owns or is claiming); what it holds (domain ->
    token). A lease another node took (a new token, another node_id) is not among them: the node lost it.

    A lease in the node's name that it does not hold any more (a release or a claim that failed half way, domains
    dropped while cut off from the store) is given up here: renewing every lease in its name would keep such a
    domain from every other node for as long as this one lives, with nobody serving it."""
    held = [int(d) for d in keep]
    await conn.execute(text(
        "UPDATE domain_leases SET node_id = '', "
        "expires_at = clock_timestamp() AT TIME ZONE 'UTC' - interval '1 second' "
        "WHERE node_id = :n AND NOT (domain_id = ANY(:held))").bindparams(
            bindparam("held", type_=ARRAY(Integer))), {"n": node_id, "held": held})
    rows = await conn.execute(text(
        "UPDATE domain_leases SET expires_at = clock_timestamp() AT TIME ZONE 'UTC' + make_interval(secs => :t) "
        "WHERE node_id = :n AND domain_id = ANY(:held) RETURNING domain_id, token").bindparams(
            bindparam("held", type_=ARRAY(Integer))), {"n": node_id, "t": ttl, "held": held})
    return {int(r.domain_id): int(r.token) for r in rows}


async def claim(conn: AsyncConnection, domain_id: int, node_id: str, ttl: float) -> int | None:
    """Take the domain if nobody holds a live lease on it: a new token (the old one plus one). None: another node
    holds it (or the domain is gone). A node re-claiming its own live lease keeps its token."""
    row = (await conn.execute(text(
        "INSERT INTO domain_leases (domain_id, node_id, token, expires_at) "
        "SELECT d.id, :n, 1, clock_timestamp() AT TIME ZONE 'UTC' + make_interval(secs => :t) FROM domains d "
        "WHERE d.id = :d "
        "ON CONFLICT (domain_id) DO UPDATE SET node_id = EXCLUDED.node_id, expires_at = EXCLUDED.expires_at, "
        "token = CASE WHEN domain_leases.node_id = EXCLUDED.node_id "
        "             AND domain_leases.expires_at > clock_timestamp() AT TIME ZONE 'UTC' "
        "        THEN domain_leases.token ELSE domain_leases.token + 1 END "
        "WHERE domain_leases.expires_at <= clock_timestamp() AT TIME ZONE 'UTC' OR domain_leases.node_id = :n "
        "RETURNING token"), {"d": domain_id, "n": node_id, "t": ttl})).first()
    return int(row[0]) if row is not None else None


async def release(conn: AsyncConnection, domain_id: int, node_id: str, token: int) -> bool:
    """Give the domain up at once (another node may claim it now): only the lease with this token. The lease keeps
    no owner (node_id ''), so the node's next renewal cannot extend it again."""
    result = await conn.execute(text(
        "UPDATE domain_leases SET expires_at = clock_timestamp() AT TIME ZONE 'UTC' - interval '1 second', "
        "node_id = '' WHERE domain_id = :d AND node_id = :n AND token = :k"),
        {"d": domain_id, "n": node_id, "k": token})
    return bool(getattr(result, "rowcount", 0))


async def release_all(conn: AsyncConnection, node_id: str) -> None:
    await conn.execute(text(
        "UPDATE domain_leases SET expires_at = clock_timestamp() AT TIME ZONE 'UTC' - interval '1 second', "
        "node_id = '' WHERE node_id = :n"), {"n": node_id})


async def tokens_for_write(session: AsyncSession, domains: Iterable[int], hold: float = 0.0) -> dict[int, int]:
    """The current token of each domain, read ``FOR SHARE`` inside the writer's transaction: a claim by another
    node (an UPDATE of the row) waits until this transaction ends, so its recovery sees everything written here,
    and nothing is written here after it. ``hold``: seconds the transaction may then sit idle before the server
    ends it (a writer cut off mid-transaction must not hold the rows, and so the failover, for minutes)."""
    ids = sorted(set(domains))
    if not ids:
        return {}
    if hold > 0:
        await session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {int(hold * 1000)}"))
    c = _LEASES.c
    rows = await session.execute(
        select(c.domain_id, c.token).where(c.domain_id.in_(ids)).order_by(c.domain_id).with_for_update(read=True))
    return {int(r.domain_id): int(r.token) for r in rows}


# --- callbacks waiting to be placed (cluster.callbacks) ----------------------------------------------------------

async def token_for_write(conn: AsyncConnection, domain_id: int) -> int | None:
    """``tokens_for_write`` on a plain connection, for one domain."""
    row = (await conn.execute(text("SELECT token FROM domain_leases WHERE domain_id = :d FOR SHARE"),
                              {"d": domain_id})).first()
    return int(row[0]) if row is not None else None


async def keep_callback(conn: AsyncConnection, key: str, domain_id: int, due_at: datetime, data: str) -> None:
    await conn.execute(text("INSERT INTO pending_callbacks (id, domain_id, due_at, data) VALUES (:k, :d, :t, :x) "
                            "ON CONFLICT (id) DO NOTHING"),
                       {"k": key, "d": domain_id, "t": due_at.astimezone(UTC).replace(tzinfo=None), "x": data})


async def take_callback(conn: AsyncConnection, key: str) -> bool:
    """Delete it; whether this transaction did (a callback is placed by whoever takes it, once)."""
    row = (await conn.execute(text("DELETE FROM pending_callbacks WHERE id = :k RETURNING id"), {"k": key})).first()
    return row is not None


async def pending_callbacks(conn: AsyncConnection, domain_id: int) -> list[tuple[str, datetime, str]]:
    rows = await conn.execute(text("SELECT id, due_at, data FROM pending_callbacks WHERE domain_id = :d "
                                   "ORDER BY due_at"), {"d": domain_id})
    return [(r.id, r.due_at.replace(tzinfo=UTC), r.data) for r in rows]
