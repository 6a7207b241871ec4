"""Queries over the notifier's outbox, delivery log and delivery health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vpbx.store import changes
from vpbx.store.base import UTCDateTime
from vpbx.store.db import file_checkpoints, sqlite_file, take_writer_turn
from vpbx.store.sqlite_cursor import BUSY_MS
from vpbx.store.tables import DeliveryAttempt, DeliveryHealth, Integration, OutboxRow
from vpbx.tasks import spawn

log = logging.getLogger("vpbx.notify")

CLAIM_COLUMNS = (OutboxRow.id, OutboxRow.uid, OutboxRow.domain_id, OutboxRow.command, OutboxRow.key,
                 OutboxRow.url, OutboxRow.body, OutboxRow.content_type, OutboxRow.attempts,
                 OutboxRow.round_attempts, OutboxRow.created_at, OutboxRow.next_at)


_T = cast(Table, OutboxRow.__table__)
_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)


def _claim_statement() -> Any:
    """Built once: the hot claim runs as a cached, compiled Core statement with bound parameters."""
    t = _T
    o = t.alias("o")
    earlier = t.alias("earlier")
    i = cast(Table, Integration.__table__)
    now = bindparam("now", type_=UTCDateTime())
    off = select(i.c.domain_id).where(or_(i.c.enabled.is_(False), i.c.switched_off.is_(True)))
    # The oldest due rows first (walking the (state, next_at) index, stopping at :scan), then at most
    # :per_domain of each domain among them, then :limit in all.
    candidates = (select(o.c.id, o.c.domain_id, o.c.next_at)
                  .where(o.c.state == "pending", o.c.next_at <= now,
                         or_(o.c.lease_until.is_(None), o.c.lease_until < now),
                         o.c.domain_id.not_in(off),
                         o.c.domain_id.not_in(bindparam("busy", expanding=True)),
                         o.c.id.not_in(bindparam("inflight", expanding=True)),
                         or_(o.c.key.is_(None),
                             ~exists().where(earlier.c.domain_id == o.c.domain_id, earlier.c.key == o.c.key,
                                             earlier.c.state == "pending", earlier.c.id < o.c.id)))
                  .order_by(o.c.next_at, o.c.id).limit(bindparam("scan")).subquery())
    c = candidates
    ranked = (select(c.c.id, c.c.next_at,
                     func.row_number().over(partition_by=c.c.domain_id, order_by=(c.c.next_at, c.c.id)).label("rank"))
              .subquery())
    chosen = (select(ranked.c.id).where(ranked.c.rank <= bindparam("per_domain"))
              .order_by(ranked.c.next_at, ranked.c.id).limit(bindparam("limit")))
    columns = [t.c[c.key] for c in CLAIM_COLUMNS]
    return (update(t).where(t.c.id.in_(chosen), t.c.state == "pending",
                            or_(t.c.lease_until.is_(None), t.c.lease_until < now))
            .values(lease_until=bindparam("lease_until"), lease_owner=bindparam("owner"))
            .returning(*columns))


_CLAIM = _claim_statement()
_NEXT_DUE = select(func.min(_T.c.next_at)).where(_T.c.state == "pending", _T.c.next_at > bindparam("after"))


async def claim(session: AsyncSession, *, now: datetime, limit: int, per_domain: int, owner: str,
                lease_until: datetime, exclude_domains: Iterable[int] = (),
                exclude_ids: Iterable[int] = ()) -> Sequence[Row[Any]]:
    """Lease up to ``limit`` due rows (at most ``per_domain`` of one domain) in one statement.

    A row is due when pending, ``next_at`` has come, its lease (if any) expired, its integration is on,
    and no earlier row of its ordering key is still pending: one key's rows go out strictly in order.
    """
    conn = await session.connection()
    result = await conn.execute(_CLAIM, {"now": now, "limit": limit, "scan": limit * 4, "per_domain": per_domain,
                                         "owner": owner,
                                         "lease_until": lease_until, "busy": list(exclude_domains),
                                         "inflight": list(exclude_ids)})
    rows: list[Any] = list(result.all())
    return sorted(rows, key=lambda r: (r.next_at, r.id))


async def next_due(session: AsyncSession, after: datetime) -> datetime | None:
    """The earliest future ``next_at`` of a pending row: when the dispatcher should look again."""
    conn = await session.connection()
    due: datetime | None = (await conn.execute(_NEXT_DUE, {"after": after})).scalar()
    return due


async def record(session: AsyncSession, updates: list[dict[str, Any]], attempts: list[dict[str, Any]]) -> None:
    """Write a batch of attempt outcomes: row updates by primary key and delivery-log rows."""
    conn = await session.connection()
    if updates:
        await conn.execute(_RECORD, updates)
    if attempts:
        await conn.execute(insert(_ATTEMPTS), attempts)


_RECORD = update(_T).where(_T.c.id == bindparam("_id")).values(
    state=bindparam("state"), attempts=bindparam("attempts"), round_attempts=bindparam("round_attempts"),
    next_at=bindparam("next_at"), lease_until=None, lease_owner=None, delivered_at=bindparam("delivered_at"),
    last_status=bindparam("last_status"), last_error=bindparam("last_error"))
# Only a lease of the releasing dispatcher: a lapsed one may have been taken by another node meanwhile.
_RELEASE = update(_T).where(_T.c.id == bindparam("_id"), _T.c.lease_owner == bindparam("_owner")).values(
    lease_until=None, lease_owner=None)


async def release(session: AsyncSession, ids: list[int], owner: str) -> None:
    """Give ``owner``'s leased rows back without an attempt (their integration went off meanwhile, or their lease
    was nearly over before their request could start)."""
    if ids:
        conn = await session.connection()
        await conn.execute(_RELEASE, [{"_id": i, "_owner": owner} for i in ids])


async def integrations(session: AsyncSession, domain_ids: Iterable[int]) -> list[Integration]:
    ids = list(domain_ids)
    if not ids:
        return []
    return list((await session.scalars(select(Integration).where(Integration.domain_id.in_(ids)))).all())


async def health(session: AsyncSession, domain_ids: Iterable[int]) -> dict[int, DeliveryHealth]:
    ids = list(domain_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(DeliveryHealth).where(DeliveryHealth.domain_id.in_(ids)))
    return {h.domain_id: h for h in rows}


async def save_health(session: AsyncSession, domain_id: int, first_failure_at: datetime | None,
                      last_success_at: datetime | None) -> None:
    row = await session.get(DeliveryHealth, domain_id)
    if row is None:
        session.add(DeliveryHealth(domain_id=domain_id, first_failure_at=first_failure_at,
                                   last_success_at=last_success_at))
    else:
        row.first_failure_at = first_failure_at
        row.last_success_at = last_success_at
    await session.flush()


async def switch_off(session: AsyncSession, domain_id: int) -> None:
    await session.execute(update(Integration).where(Integration.domain_id == domain_id)
                          .values(switched_off=True).execution_options(synchronize_session=False))


async def deliveries(session: AsyncSession, domain_id: int, *, callid: str | None = None,
                     command: str | None = None, state: str | None = None, start: int = 0,
                     limit: int | None = 100) -> tuple[list[OutboxRow], int]:
    """A domain's notifications, newest first, and how many match."""
    conditions = [OutboxRow.domain_id == domain_id]
    if callid:
        conditions.append(OutboxRow.callid == callid)
    if command:
        conditions.append(OutboxRow.command == command)
    if state:
        conditions.append(OutboxRow.state == state)
    total = await session.scalar(select(func.count()).select_from(OutboxRow).where(*conditions)) or 0
    query = select(OutboxRow).where(*conditions).order_by(OutboxRow.id.desc()).offset(start)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all()), total


async def attempts_of(session: AsyncSession, outbox_ids: Iterable[int]) -> dict[int, list[DeliveryAttempt]]:
    ids = list(outbox_ids)
    out: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(ids))
                                 .order_by(DeliveryAttempt.id))
    for a in rows:
        out[a.outbox_id].append(a)
    return out


async def delivery(session: AsyncSession, domain_id: int, outbox_id: int) -> OutboxRow | None:
    return await session.scalar(select(OutboxRow).where(OutboxRow.id == outbox_id, OutboxRow.domain_id == domain_id))


async def replay(session: AsyncSession, row: OutboxRow, now: datetime) -> None:
    """Send the notification again now (same id, same body), with a fresh retry schedule."""
    row.state = "pending"
    row.next_at = now
    row.round_attempts = 0
    row.lease_until = None
    row.lease_owner = None
    await session.flush()


async def resend_pending(session: AsyncSession, domain_id: int) -> int:
    """The integration is back on: every pending notification of the domain goes now, oldest first, with a
    fresh schedule (``next_at = created_at`` is due under any clock and keeps the creation order)."""
    result = await session.execute(
        update(OutboxRow).where(OutboxRow.domain_id == domain_id, OutboxRow.state == "pending")
        .values(next_at=OutboxRow.created_at, round_attempts=0, lease_until=None, lease_owner=None)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


# A failing CRM's probe: its oldest pending history/rating push is due now, unless its own retry comes within
# the probe interval anyway (``later``). A CRM back: all its pending pushes are due now.
_PROBE = update(_T).where(
    _T.c.id == select(func.min(_T.c.id)).where(_T.c.domain_id == bindparam("d"), _T.c.state == "pending",
                                               _T.c.url.is_(None), _T.c.command.in_(("history", "rating")))
    .scalar_subquery(),
    _T.c.next_at > bindparam("later")).values(next_at=bindparam("now"))
_RECOVER = update(_T).where(_T.c.domain_id == bindparam("d"), _T.c.state == "pending", _T.c.url.is_(None),
                            _T.c.next_at > bindparam("now")).values(next_at=bindparam("now"))


async def probeable(session: AsyncSession, domains: Iterable[int]) -> set[int]:
    """Of these failing CRMs' domains, those with a pending history/rating push to probe (integration on)."""
    wanted = list(domains)
    if not wanted:
        return set()
    i = cast(Table, Integration.__table__)
    off = select(i.c.domain_id).where(or_(i.c.enabled.is_(False), i.c.switched_off.is_(True)))
    query = (select(_T.c.domain_id).distinct()
             .where(_T.c.domain_id.in_(wanted), _T.c.state == "pending", _T.c.url.is_(None),
                    _T.c.command.in_(("history", "rating")), _T.c.domain_id.not_in(off)))
    return set((await session.scalars(query)).all())


async def pull_forward(session: AsyncSession, now: datetime, later: datetime, probe: Iterable[int],
                       recovered: Iterable[int]) -> None:
    conn = await session.connection()
    for d in probe:
        await conn.execute(_PROBE, {"d": d, "now": now, "later": later})
    for d in recovered:
        await conn.execute(_RECOVER, {"d": d, "now": now})


_OLDEST = (select(_T.c.id, _T.c.state, _T.c.created_at).where(_T.c.id > bindparam("after"))
           .order_by(_T.c.id).limit(bindparam("batch")))
_FORGET = delete(_T).where(_T.c.id.in_(bindparam("ids", expanding=True)), _T.c.state != "pending")


async def forget_settled(session: AsyncSession, *, after: int, before: datetime, batch: int) -> tuple[int, int, bool]:
    """One step of the delivery log's retention, oldest first: of the ``batch`` rows after id ``after``, those
    delivered or failed and created before ``before`` are deleted, their attempts with them (the key cascades).
    Returns how many were deleted, the last id looked at, and whether the walk is over (a row created from
    ``before`` on was reached: ids grow with time, so nothing older follows). Walking the primary key, a step
    reads ``batch`` rows whatever the table's size; a pending row is passed over, kept."""
    conn = await session.connection()
    rows = (await conn.execute(_OLDEST, {"after": after, "batch": batch})).all()
    ids = [r.id for r in rows if r.created_at < before and r.state != "pending"]
    deleted = int((await conn.execute(_FORGET, {"ids": ids})).rowcount or 0) if ids else 0
    over = len(rows) < batch or any(r.created_at >= before for r in rows)
    return deleted, rows[-1].id if rows else after, over


async def counts(session: AsyncSession, domain_id: int | None = None) -> dict[str, int]:
    query = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
    if domain_id is not None:
        query = query.where(OutboxRow.domain_id == domain_id)
    return {state: n for state, n in (await session.execute(query)).all()}


# The dispatcher's pass: record outcomes and claim due rows, in one transaction and few round trips ---------
#
# The generic road above (ORM session, one SQLAlchemy statement per step) costs about 20 hops between the
# event loop and the driver per pass; under a busy loop each hop waits for the GIL or a loop turn, and that
# latency, not SQL, bounded delivery throughput (profiled: 30 ms passes of which under 2 ms were SQLite).
# SQLite runs the whole pass as one call on the dispatcher's own connection thread; PostgreSQL runs it as
# four asyncpg round trips (BEGIN, record, claim + next due, COMMIT).


@dataclass(slots=True)
class PassWork:
    """What one pass writes and asks. Datetimes are aware UTC."""

    now: datetime
    # (id, state, attempts, round_attempts, next_at, delivered_at, last_status, last_error)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    # (outbox_id, domain_id, attempt_no, at, url, status_code, latency_ms, outcome, error, response_excerpt)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    health: dict[int, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    switch_off: list[int] = field(default_factory=list)
    probe: list[int] = field(default_factory=list)  # failing CRMs: their oldest pending push is due now
    probe_later: datetime | None = None  # ... unless its own retry comes before this anyway
    recovered: list[int] = field(default_factory=list)  # CRMs back: all their pending pushes are due now
    limit: int = 0  # 0: claim nothing
    per_domain: int = 0
    owner: str = ""
    lease_until: datetime | None = None
    busy: list[int] = field(default_factory=list)  # domains with no room: skipped by the walk
    load: dict[int, int] = field(default_factory=dict)  # rows a domain already holds: it gets per_domain - load
    inflight: list[int] = field(default_factory=list)
    fresh: frozenset[int] = frozenset()  # domains whose integration need not be read
    # Due rows the claim walks at most (0: 4 x limit). Walking past a domain's room finds other domains' rows
    # in the same pass; with one domain delivering, those rows are walked for nothing (profiled: the claim was
    # half of a pass, and a 4 x limit walk cost 2.5 times a 1.5 x limit one).
    scan: int = 0

    @property
    def walk(self) -> int:
        return self.scan or self.limit * 4


@dataclass(slots=True)
class PassResult:
    rows: list[ClaimedRow]
    integrations: list[IntegrationTarget]
    next_due: datetime | None
    # The claim could not see this pass's outcomes (one PostgreSQL statement, one snapshot): a row they
    # unblocked (the next of its key) waits for the next pass, which should come at once.
    again: bool = False


@dataclass(slots=True)
class ClaimedRow:
    id: int
    uid: str
    domain_id: int
    command: Any
    key: str | None
    url: str | None
    body: str
    content_type: str
    attempts: int
    round_attempts: int
    created_at: datetime
    next_at: datetime


@dataclass(slots=True)
class IntegrationTarget:
    domain_id: int
    enabled: bool
    switched_off: bool
    crm_url: str
    signing_secret: str | None  # as stored (sealed)
    crm_token: str = ""  # as stored (sealed)


class PassStore:
    """Runs dispatcher passes on one backend; ``for_engine`` picks the fastest road it supports."""

    # Rows a domain has claimed at most, in multiples of its request slots: enough to keep its requests busy
    # while a pass runs. Deeper costs every claim a longer walk past the rows in flight (measured on SQLite).
    CLAIM_ROUNDS = 4

    async def run(self, work: PassWork) -> PassResult:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:
        return None


def for_engine(engine: AsyncEngine, sessions: Any) -> PassStore:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        return SqlitePassStore(url.database)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return PgPassStore(engine)
    return SessionPassStore(sessions)


_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format (compared as text)


def _naive(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    # The clock's moments are UTC already: astimezone only for others (it cost a delivery ~1.5 us per column)
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).replace(tzinfo=None)


def _sqlite_ts(moment: datetime | None) -> str | None:
    # isoformat gives _SQLITE_TS's text (microseconds always) at a third of strftime's cost (profiled per delivery)
    naive = _naive(moment)
    return None if naive is None else naive.isoformat(" ", "microseconds")


def _from_sqlite(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


_CLAIM_SQL = """
UPDATE notify_outbox SET lease_until = {lease_until}, lease_owner = {owner}
WHERE {ids_in}(
  SELECT id FROM (
    SELECT id, domain_id, next_at, row_number() OVER (PARTITION BY domain_id ORDER BY next_at, id) AS rank FROM (
      SELECT o.id, o.domain_id, o.next_at FROM notify_outbox AS o
      WHERE o.state = 'pending' AND o.next_at <= {now} AND (o.lease_until IS NULL OR o.lease_until < {now})
        AND o.domain_id NOT IN (SELECT domain_id FROM integrations WHERE enabled = {false} OR switched_off = {true})
        AND {not_busy} AND {not_inflight}
        AND (o.key IS NULL OR NOT EXISTS (
          SELECT 1 FROM notify_outbox AS e
          WHERE e.state = 'pending' AND e.domain_id = o.domain_id AND e.key = o.key AND e.id < o.id))
      ORDER BY o.next_at, o.id LIMIT {scan}) AS candidates) AS ranked
  WHERE rank <= {per_domain} - coalesce(({load_of}), 0) ORDER BY next_at, id LIMIT {limit}){ids_end}
  AND state = 'pending' AND (lease_until IS NULL OR lease_until < {now})
RETURNING id, uid, domain_id, command, key, url, body, content_type, attempts, round_attempts, created_at, next_at"""

_SQLITE_CLAIM = _CLAIM_SQL.format(
    ids_in="id IN ", ids_end="", lease_until=":lease_until", owner=":owner", now=":now", false="0", true="1",
    scan=":scan",
    per_domain=":per_domain", limit=":limit",
    not_busy="o.domain_id NOT IN (SELECT value FROM json_each(:busy))",
    not_inflight="o.id NOT IN (SELECT value FROM json_each(:inflight))",
    load_of="SELECT l.value FROM json_each(:load) AS l WHERE l.key = CAST(ranked.domain_id AS TEXT)")
_SQLITE_RECORD = ("UPDATE notify_outbox SET state = ?, attempts = ?, round_attempts = ?, next_at = ?,"
                  " lease_until = NULL, lease_owner = NULL, delivered_at = ?, last_status = ?, last_error = ?"
                  " WHERE id = ?")
_SQLITE_ATTEMPT = ("INSERT INTO notify_attempts (outbox_id, domain_id, attempt_no, at, url, status_code, latency_ms,"
                   " outcome, error, response_excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQLITE_RELEASE = "UPDATE notify_outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ? AND lease_owner = ?"
_SQLITE_HEALTH = ("INSERT INTO notify_health (domain_id, first_failure_at, last_success_at) VALUES (?, ?, ?)"
                  " ON CONFLICT (domain_id) DO UPDATE SET first_failure_at = excluded.first_failure_at,"
                  " last_success_at = excluded.last_success_at")
_SQLITE_SWITCH_OFF = "UPDATE integrations SET switched_off = 1 WHERE domain_id = ?"
_SQLITE_NEXT_DUE = "SELECT min(next_at) FROM notify_outbox WHERE state = 'pending' AND next_at > ?"
_SQLITE_INTEGRATIONS = ("SELECT domain_id, enabled, switched_off, crm_url, signing_secret, crm_token FROM integrations"
                        " WHERE domain_id IN (SELECT value FROM json_each(?))")
_PULL_SQL = ("UPDATE notify_outbox SET next_at = {now} WHERE id = (SELECT min(id) FROM notify_outbox"
             " WHERE domain_id = {d} AND state = 'pending' AND url IS NULL AND command IN ('history', 'rating'))"
             " AND next_at > {later}",
             "UPDATE notify_outbox SET next_at = {now} WHERE domain_id = {d} AND state = 'pending' AND url IS NULL"
             " AND next_at > {now}")
_SQLITE_PROBE, _SQLITE_RECOVER = (q.format(now=":now", d=":d", later=":later") for q in _PULL_SQL)
_PG_PROBE, _PG_RECOVER = (q.format(now="$1", d="$2", later="$3") for q in _PULL_SQL)


class _Busy(Exception):
    """Another connection holds SQLite's write lock: take the slow road, which waits for it."""


class SqlitePassStore(PassStore):
    """The pass as one synchronous call on connections of the dispatcher's own.

    It takes this process's writer turn of the file first, in line with the API's and the engine's writes
    (``store.db``), so a pass never finds the lock held by a writer of its own process. It then runs on the event
    loop's thread when the lock is free (``BEGIN IMMEDIATE`` without a busy wait), typically 1-2 ms; when another
    process (the CLI) holds it, on a worker thread that waits for it. Not always on the worker: profiled, a worker
    thread reacquires the GIL after every SQLite step and each reacquisition waits for the busy loop thread (up to
    the 5 ms switch interval), so thread-side passes took 20-30 ms for under 2 ms of SQL. Neither connection
    checkpoints: a pass's commit counts towards the file's ``Checkpoints``, which copy the log into the database
    holding the same turn, so no pass appends to the log while one runs. Commits are durable like the engine's
    (WAL, synchronous=NORMAL)."""

    def __init__(self, path: str) -> None:
        self.path = sqlite_file(path)  # the key of the file's writer turn and checkpoints (store.db)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpbx-notify-sqlite")
        self._fast: sqlite3.Connection | None = None
        self._slow: sqlite3.Connection | None = None

    def _connect(self, busy_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _slow_conn(self) -> sqlite3.Connection:
        if self._slow is None:
            self._slow = self._connect(BUSY_MS)
        return self._slow

    def _run_slow(self, work: PassWork) -> PassResult:
        return self._run(self._slow_conn(), work, wait=True)

    def _run(self, conn: sqlite3.Connection, work: PassWork, *, wait: bool) -> PassResult:
        # Each moment once: a delivered row's time is its attempt's, its next time and its delivery time (profiled:
        # the conversions were a twentieth of a delivery's CPU).
        texts: dict[datetime | None, str | None] = {None: None}

        def ts(moment: datetime | None) -> str | None:
            if moment not in texts:
                texts[moment] = _sqlite_ts(moment)
            return texts[moment]

        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and not conn.in_transaction:
                raise _Busy from exc
            raise
        try:
            if work.updates:
                conn.executemany(_SQLITE_RECORD, [(u[1], u[2], u[3], ts(u[4]), ts(u[5]), u[6], u[7], u[0])
                                                  for u in work.updates])
            if work.attempts:
                conn.executemany(_SQLITE_ATTEMPT, [(a[0], a[1], a[2], ts(a[3]), *a[4:]) for a in work.attempts])
            if work.released:
                conn.executemany(_SQLITE_RELEASE, [(i, work.owner) for i in work.released])
            for d, (first, last) in work.health.items():
                conn.execute(_SQLITE_HEALTH, (d, ts(first), ts(last)))
            for d in work.switch_off:
                conn.execute(_SQLITE_SWITCH_OFF, (d,))
            if work.switch_off:  # a configuration change: every process's caches (the integration) see it
                conn.execute(changes.BUMP)
            for d in work.probe:
                conn.execute(_SQLITE_PROBE, {"now": ts(work.now), "d": d, "later": ts(work.probe_later)})
            for d in work.recovered:
                conn.execute(_SQLITE_RECOVER, {"now": ts(work.now), "d": d})
            rows: list[ClaimedRow] = []
            targets: list[IntegrationTarget] = []
            due = None
            if work.limit > 0:
                now = ts(work.now)
                raw = conn.execute(_SQLITE_CLAIM, {
                    "now": now, "lease_until": ts(work.lease_until), "owner": work.owner, "scan": work.walk,
                    "per_domain": work.per_domain, "limit": work.limit, "busy": json.dumps(work.busy),
                    "inflight": json.dumps(work.inflight),
                    "load": json.dumps({str(d): n for d, n in work.load.items()})}).fetchall()
                rows = [ClaimedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                                   datetime.fromisoformat(r[10]).replace(tzinfo=UTC),
                                   datetime.fromisoformat(r[11]).replace(tzinfo=UTC)) for r in raw]
                rows.sort(key=lambda r: (r.next_at, r.id))
                stale = {r.domain_id for r in rows} - work.fresh
                if stale:
                    targets = [IntegrationTarget(r[0], bool(r[1]), bool(r[2]), r[3], r[4], r[5])
                               for r in conn.execute(_SQLITE_INTEGRATIONS, (json.dumps(sorted(stale)),))]
                if len(rows) < work.limit:
                    due = _from_sqlite(conn.execute(_SQLITE_NEXT_DUE, (now,)).fetchone()[0])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return PassResult(rows, targets, due)

    async def run(self, work: PassWork) -> PassResult:
        turn = await take_writer_turn(self.path)
        try:
            if self._fast is None:
                self._fast = self._connect(0)
            try:
                result = self._run(self._fast, work, wait=False)
            except _Busy:
                result = await asyncio.get_running_loop().run_in_executor(self._pool, self._run_slow, work)
            file_checkpoints(self.path).committed()
        finally:
            turn.release()
        return result

    def _close_slow(self) -> None:
        if self._slow is not None:
            self._slow.close()
            self._slow = None

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_slow)
        self._pool.shutdown(wait=False)


_PG_RECORD = """
WITH settled AS (
  UPDATE notify_outbox AS o SET state = v.state, attempts = v.attempts, round_attempts = v.round_attempts,
    next_at = v.next_at, lease_until = NULL, lease_owner = NULL, delivered_at = v.delivered_at,
    last_status = v.last_status, last_error = v.last_error
  FROM unnest($1::int[], $2::varchar[], $3::int[], $4::int[], $5::timestamp[], $6::timestamp[], $7::int[],
              $8::varchar[]) AS v(id, state, attempts, round_attempts, next_at, delivered_at, last_status, last_error)
  WHERE o.id = v.id)
INSERT INTO notify_attempts (outbox_id, domain_id, attempt_no, at, url, status_code, latency_ms, outcome, error,
                             response_excerpt)
SELECT * FROM unnest($9::int[], $10::int[], $11::int[], $12::timestamp[], $13::varchar[], $14::int[], $15::int[],
                     $16::varchar[], $17::varchar[], $18::varchar[])"""
# The claimed ids are one array computed first (an InitPlan), the rows then found by primary key: as
# ``id IN (subquery)`` PostgreSQL joined every pending row against the subquery when it believed the outbox nearly
# empty (never analyzed: a burst just enqueued), 1.25 million comparisons and 132-315 ms for 256 rows out of 5k.
_PG_IDS_IN = "id = ANY(ARRAY"
_PG_CLAIM = "WITH claimed AS ({claim})\n" \
    "SELECT *, NULL::timestamp AS due FROM claimed UNION ALL\n" \
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,\n" \
    "  (SELECT min(next_at) FROM notify_outbox WHERE state = 'pending' AND next_at > $1)".format(
        claim=_CLAIM_SQL.format(ids_in=_PG_IDS_IN, ids_end=")",
                                now="$1", lease_until="$2", owner="$3", scan="$4", per_domain="$5", limit="$6",
                                false="false", true="true", not_busy="o.domain_id <> ALL($7::int[])",
                                not_inflight="o.id <> ALL($8::int[])",
                                load_of="SELECT l.n FROM unnest($9::int[], $10::int[]) AS l(d, n)"
                                        " WHERE l.d = ranked.domain_id"))
_PG_PASS = """
WITH settled AS (
  UPDATE notify_outbox AS o SET state = v.state, attempts = v.attempts, round_attempts = v.round_attempts,
    next_at = v.next_at, lease_until = NULL, lease_owner = NULL, delivered_at = v.delivered_at,
    last_status = v.last_status, last_error = v.last_error
  FROM unnest($11::int[], $12::varchar[], $13::int[], $14::int[], $15::timestamp[], $16::timestamp[], $17::int[],
              $18::varchar[]) AS v(id, state, attempts, round_attempts, next_at, delivered_at, last_status, last_error)
  WHERE o.id = v.id),
logged AS (
  INSERT INTO notify_attempts (outbox_id, domain_id, attempt_no, at, url, status_code, latency_ms, outcome, error,
                               response_excerpt)
  SELECT * FROM unnest($19::int[], $20::int[], $21::int[], $22::timestamp[], $23::varchar[], $24::int[],
                       $25::int[], $26::varchar[], $27::varchar[], $28::varchar[])),
released AS (
  UPDATE notify_outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ANY($29::int[]) AND lease_owner = $3),
claimed AS ({claim})
SELECT *, NULL::timestamp AS due, NULL::boolean AS waiting FROM claimed UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  (SELECT min(next_at) FROM notify_outbox WHERE state = 'pending' AND next_at > $1),
  EXISTS (SELECT 1 FROM unnest($30::int[]) AS s(id)
          CROSS JOIN LATERAL (SELECT f.domain_id, f.key FROM notify_outbox AS f
                              WHERE f.id = s.id AND f.key IS NOT NULL LIMIT 1) AS f
          CROSS JOIN LATERAL (SELECT 1 FROM notify_outbox AS w WHERE w.state = 'pending'
                              AND w.domain_id = f.domain_id AND w.key = f.key AND w.id > s.id LIMIT 1) AS w)
  -- (each LIMIT 1 keeps its lookup a probe by primary key / key index, whatever the statistics say:
  -- on a table never analyzed PostgreSQL otherwise joined the other way round, 2 s per pass)""".format(
    claim=_CLAIM_SQL.format(ids_in=_PG_IDS_IN, ids_end=")",
                            now="$1", lease_until="$2", owner="$3", scan="$4", per_domain="$5", limit="$6",
                            false="false", true="true", not_busy="o.domain_id <> ALL($7::int[])",
                            not_inflight="o.id <> ALL($8::int[])",
                            load_of="SELECT l.n FROM unnest($9::int[], $10::int[]) AS l(d, n)"
                                    " WHERE l.d = ranked.domain_id"))
_PG_RELEASE = ("UPDATE notify_outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ANY($1::int[])"
               " AND lease_owner = $2")
_PG_HEALTH = ("INSERT INTO notify_health (domain_id, first_failure_at, last_success_at) VALUES ($1, $2, $3)"
              " ON CONFLICT (domain_id) DO UPDATE SET first_failure_at = excluded.first_failure_at,"
              " last_success_at = excluded.last_success_at")
_PG_SWITCH_OFF = "UPDATE integrations SET switched_off = true WHERE domain_id = $1"
_PG_INTEGRATIONS = ("SELECT domain_id, enabled, switched_off, crm_url, signing_secret, crm_token FROM integrations"
                    " WHERE domain_id = ANY($1::int[])")


class PgPassStore(PassStore):
    """The pass over asyncpg directly, on a pooled connection: BEGIN, one statement recording every outcome
    (row updates and delivery-log rows from arrays), one claiming and reading the next due time, COMMIT.

    The claim is fast only when PostgreSQL knows how many rows are due: planned from an outbox it believes
    nearly empty (a burst autovacuum has not analyzed yet: it looks once a minute, and only past 10% of the
    table changed), it sorted every due row for each claim (measured: 48 ms a pass for a 20k backlog, 4 ms
    once analyzed). So a pass that finds a backlog has the table analyzed, beside the passes, at most once
    per ``ANALYZE_EVERY`` seconds."""

    ANALYZE_EVERY = 60.0
    # A pass is a round trip, 10-15 ms under load, while a request takes vpbx tens of us: a domain's requests
    # must not run out of claimed rows before the pass is back. Measured (bench/delivery.py, 20k, same runs):
    # 0.55-0.58 of the limit at 8 rounds, 0.72-0.73 at 16, 0.75-0.81 at 32 (with 1,024 rows in flight).
    CLAIM_ROUNDS = 32
    BACKLOG = 32  # rows claimed in one pass that say a backlog is there

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._analyzed = float("-inf")
        self._analyze: asyncio.Task[None] | None = None

    async def run(self, work: PassWork) -> PassResult:
        async with self.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            conn: Any = raw.driver_connection
            try:
                result = await self._run(conn, work)
            except BaseException:
                await sa_conn.invalidate()
                raise
        if len(result.rows) >= self.BACKLOG and time.monotonic() - self._analyzed > self.ANALYZE_EVERY:
            self._analyzed = time.monotonic()
            self._analyze = spawn(self._analyze_outbox(), name="vpbx-notify-analyze")
        return result

    async def _analyze_outbox(self) -> None:
        try:
            async with self.engine.connect() as sa_conn:
                await sa_conn.exec_driver_sql("ANALYZE notify_outbox")
                await sa_conn.commit()
        except Exception as exc:  # statistics are an optimisation: a failed ANALYZE leaves the passes correct
            log.warning("ANALYZE notify_outbox failed: %s", exc)

    async def close(self) -> None:
        if self._analyze is not None and not self._analyze.done():
            self._analyze.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._analyze

    async def _run(self, conn: Any, work: PassWork) -> PassResult:
        if work.health or work.switch_off or work.probe or work.recovered or work.limit <= 0:
            return await self._run_in_transaction(conn, work)
        return await self._run_one_statement(conn, work)

    async def _run_one_statement(self, conn: Any, work: PassWork) -> PassResult:
        """The usual pass, one round trip: a single statement is its own transaction. Its claim sees the
        store as the statement began, so a row this pass finishes still blocks the next row of its key
        until the next pass (``again``: the statement says whether such a row waits), and the retries it
        schedules are not in its next-due (added here). Released rows are excluded from its claim by the
        caller (``inflight``), as in the other stores."""
        u: list[Sequence[Any]] = list(zip(*work.updates, strict=True)) if work.updates else [()] * 8
        a: list[Sequence[Any]] = list(zip(*work.attempts, strict=True)) if work.attempts else [()] * 10
        raw = await conn.fetch(
            _PG_PASS, _naive(work.now), _naive(work.lease_until), work.owner, work.walk, work.per_domain,
            work.limit, work.busy, work.inflight, list(work.load), list(work.load.values()),
            u[0], u[1], u[2], u[3], [_naive(x) for x in u[4]], [_naive(x) for x in u[5]], u[6], u[7],
            a[0], a[1], a[2], [_naive(x) for x in a[3]], *a[4:], work.released,
            [x[0] for x in work.updates if x[1] != "pending"])
        rows: list[ClaimedRow] = []
        due = None
        again = False
        for r in raw:
            if r[0] is None:
                due = r[12].replace(tzinfo=UTC) if r[12] is not None else None
                again = bool(r[13])
                continue
            rows.append(ClaimedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                                   r[10].replace(tzinfo=UTC), r[11].replace(tzinfo=UTC)))
        rows.sort(key=lambda r: (r.next_at, r.id))
        retries = [x[4] for x in work.updates if x[1] == "pending" and x[4] > work.now]
        if retries:
            due = min(retries) if due is None else min(due, *retries)
        stale = {r.domain_id for r in rows} - work.fresh
        targets = [IntegrationTarget(r[0], r[1], r[2], r[3], r[4], r[5])
                   for r in await conn.fetch(_PG_INTEGRATIONS, sorted(stale))] if stale else []
        return PassResult(rows, targets, due, again)

    async def _run_in_transaction(self, conn: Any, work: PassWork) -> PassResult:
        rows: list[ClaimedRow] = []
        targets: list[IntegrationTarget] = []
        due = None
        async with conn.transaction():
            if work.updates:
                u = list(zip(*work.updates, strict=True))
                a = list(zip(*work.attempts, strict=True))
                await conn.execute(_PG_RECORD, u[0], u[1], u[2], u[3], [_naive(x) for x in u[4]],
                                   [_naive(x) for x in u[5]], u[6], u[7],
                                   a[0], a[1], a[2], [_naive(x) for x in a[3]], *a[4:])
            if work.released:
                await conn.execute(_PG_RELEASE, work.released, work.owner)
            for d, (first, last) in work.health.items():
                await conn.execute(_PG_HEALTH, d, _naive(first), _naive(last))
            for d in work.switch_off:
                await conn.execute(_PG_SWITCH_OFF, d)
            if work.switch_off:  # a configuration change: every process's caches (the integration) see it
                await conn.execute(f"SELECT pg_notify('{changes.CHANNEL}', '')")
            for d in work.probe:
                await conn.execute(_PG_PROBE, _naive(work.now), d, _naive(work.probe_later))
            for d in work.recovered:
                await conn.execute(_PG_RECOVER, _naive(work.now), d)
            if work.limit > 0:
                raw = await conn.fetch(_PG_CLAIM, _naive(work.now), _naive(work.lease_until), work.owner,
                                       work.walk, work.per_domain, work.limit, work.busy, work.inflight,
                                       list(work.load), list(work.load.values()))
                for r in raw:
                    if r[0] is None:
                        due = r[12].replace(tzinfo=UTC) if r[12] is not None else None
                        continue
                    rows.append(ClaimedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                                           r[10].replace(tzinfo=UTC), r[11].replace(tzinfo=UTC)))
                rows.sort(key=lambda r: (r.next_at, r.id))
                stale = {r.domain_id for r in rows} - work.fresh
                if stale:
                    targets = [IntegrationTarget(r[0], r[1], r[2], r[3], r[4], r[5])
                               for r in await conn.fetch(_PG_INTEGRATIONS, sorted(stale))]
        return PassResult(rows, targets, due)


class SessionPassStore(PassStore):
    """Any other store: the same pass through an ORM session and the Core statements above."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    async def run(self, work: PassWork) -> PassResult:
        rows: list[ClaimedRow] = []
        targets: list[IntegrationTarget] = []
        due = None
        async with self.sessions() as session:
            updates = [{"_id": u[0], "state": u[1], "attempts": u[2], "round_attempts": u[3], "next_at": u[4],
                        "delivered_at": u[5], "last_status": u[6], "last_error": u[7]} for u in work.updates]
            keys = ("outbox_id", "domain_id", "attempt_no", "at", "url", "status_code", "latency_ms", "outcome",
                    "error", "response_excerpt")
            await record(session, updates, [dict(zip(keys, a, strict=True)) for a in work.attempts])
            await release(session, work.released, work.owner)
            for d, (first, last) in work.health.items():
                await save_health(session, d, first, last)
            for d in work.switch_off:
                await switch_off(session, d)
            await pull_forward(session, work.now, work.probe_later or work.now, work.probe, work.recovered)
            if work.limit > 0:
                assert work.lease_until is not None
                raw = await claim(session, now=work.now, limit=work.limit, per_domain=work.per_domain,
                                  owner=work.owner, lease_until=work.lease_until, exclude_domains=work.busy,
                                  exclude_ids=work.inflight)
                rows = [ClaimedRow(r.id, r.uid, r.domain_id, r.command, r.key, r.url, r.body, r.content_type,
                                   r.attempts, r.round_attempts, r.created_at, r.next_at) for r in raw]
                stale = {r.domain_id for r in rows} - work.fresh
                targets = [IntegrationTarget(i.domain_id, i.enabled, i.switched_off, i.crm_url, i.signing_secret,
                                             i.crm_token)
                           for i in await integrations(session, stale)]
                if len(rows) < work.limit:
                    due = await next_due(session, work.now)
            await session.commit()
        return PassResult(rows, targets, due)
