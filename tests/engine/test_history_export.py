"""The streamed history exports (002 §4) against the reference encoders, byte for byte.

The exports read raw rows in chunks (a ``sqlite3`` cursor in a thread of their own on SQLite, a
server-side cursor on PostgreSQL) and encode a chunk at a time; the reference encoders below (``external_csv``
and friends) encode one row of the ORM query plainly. Every API test here runs on
both backends (``vserver``), with chunks of a few rows so that chunk edges fall inside the data.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from tests.engine.test_history_api import ext

from vpbx.domain import history as rules
from vpbx.services import history
from vpbx.store import reader
from vpbx.store.reader import driver_sql
from vpbx.store.repositories.calls import (
    EXTERNAL_CSV_COLUMNS,
    EXTERNAL_EXPORT_COLUMNS,
    INNER_EXPORT_COLUMNS,
    ExternalFilter,
    InnerFilter,
    external_query,
    inner_query,
)
from vpbx.store.tables import CallRecord, Domain, InnerCallRecord
from vpbx.testing.server import ServerThread, Tenant, create_tenant

# --- the reference: one row at a time, plainly, as the documents describe each field ----------------

def external_csv(row: Sequence[Any], domain: str) -> str:
    (callid, type_, status, destination, client, login, _name, _first, _first_name, group_id, _group_name,
     diversion, _telnum_name, start, wait, duration, link, rating, _missed, _note) = row
    fields = [
        callid, rules.csv_type(type_, status), client, rules.account(login, group_id, destination, domain),
        diversion, rules.iso(start), str(wait), str(duration), rules.csv_field(link),
    ]
    if rating is not None:
        fields.append(str(rating))
    return ",".join(fields) + "\r\n"


def external_json(row: Sequence[Any], first_answered: bool, process_missed: bool) -> dict[str, Any]:
    (callid, type_, status, destination, client, login, name, first, first_name, _group_id, group_name,
     diversion, telnum_name, start, wait, duration, link, rating, missed, note) = row
    if first_answered and first:
        login, name = first, first_name
    out: dict[str, Any] = {
        "uid": callid,
        "type": type_,
        "status": rules.json_status(type_, status),
        "client": client,
        "diversion": diversion,
        "telnum_name": telnum_name,
        "destination": destination,
        "user": login,
        "user_name": name,
        "group_name": group_name,
        "start": rules.iso(start),
        "wait": wait,
        "duration": duration,
        "record": link,
    }
    if rating is not None:
        out["rating"] = rating
    if note:
        out["note"] = note
    if process_missed and missed is not None:
        out["missedStatus"] = missed
    return out


def inner_csv(row: Sequence[Any], domain: str) -> str:
    callid, status, from_login, _fn, to_login, _tn, start, wait, duration, link = row
    return ",".join([callid, status, f"{from_login}@{domain}", f"{to_login}@{domain}", rules.iso(start),
                     str(wait), str(duration), rules.csv_field(link)]) + "\r\n"


def inner_json(row: Sequence[Any]) -> dict[str, Any]:
    callid, status, from_login, from_name, to_login, to_name, start, wait, duration, link = row
    return {"uid": callid, "status": status, "from": from_login, "to": to_login, "from_name": from_name,
            "to_name": to_name, "start": rules.iso(start), "wait": wait, "duration": duration, "record": link}


T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WIDE = {"start": "20250101T000000Z", "end": "20251231T235959Z"}


def inner(callid: str, start: datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(callid=callid, status="success", from_login="admin", from_name="Администратор",
                               to_login="manager", to_name="Ольга Смирнова", start=start, wait=3, duration=40, link="")
    row.update(kw)
    return row


# Rows meant to break a naive encoder: quotes, separators and line breaks (the link is cleaned, the
# other fields pass as they are, in both encoders), non-ASCII text, NULL and zero ratings, every
# account fallback, both types and many statuses, microseconds (.999999 stays in its second).
EDGE_ROWS = [
    ext("q1", T0, link='https://x/r.mp3?a=1,b="2"', rating=0, note='примечание, "в кавычках"\r\nвторая строка'),
    ext("q2", T0 + timedelta(microseconds=999_999), link="a\r\nb\nc\rd,,e", rating=None),
    ext('q"3', T0 + timedelta(seconds=1), user_login="", first_login="", group_id="sales",
        group_name="Отдел «продаж», №1", status="Missed", destination="group", duration=0, missed_status=3),
    ext("q4", T0 + timedelta(seconds=2), user_login="", first_login="", group_id="", destination="ivr",
        status="Cancel", missed_status=4, duration=0),
    ext("q5", T0 + timedelta(seconds=3), user_login="", first_login="", group_id="", destination="",
        status="NotAvailable", duration=0),
    ext("q6", T0 + timedelta(seconds=4), type="out", status="Busy", destination="", rating=5,
        user_name='Иван "Ваня" Петров', telnum_name="Основной,\tномер"),
    ext("q7", T0 + timedelta(seconds=5), type="out", status="Success", destination="", user_login="manager",
        first_login="admin", user_name="Ольга", first_name="Админ", link="https://x/ü/запись.mp3", wait=0,
        duration=86_400),
    ext("q8", T0 + timedelta(hours=1, microseconds=1), user_name="😀 emoji", group_name="\\back\\slash\"",
        client="+7 (910) 123", note="x"),
    ext("q9", T0 + timedelta(hours=2), link=",", rating=1),
    # same start as q9: the higher id comes first
    ext("q10", T0 + timedelta(hours=2), link="\n"),
]


def add(server: ServerThread, tenant: Tenant, rows: list[dict[str, Any]], *, inner_rows: bool = False) -> int:
    async def work() -> int:
        async with server.runtime.sessions() as s:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == tenant.name))
            assert domain_id is not None
            await s.execute(insert(InnerCallRecord if inner_rows else CallRecord),
                            [{"domain_id": domain_id, **r} for r in rows])
            await s.commit()
            return int(domain_id)

    return server.call(work())


def domain_id_of(server: ServerThread, tenant: Tenant) -> int:
    async def work() -> int:
        async with server.runtime.sessions() as s:
            return int(await s.scalar(select(Domain.id).where(Domain.name == tenant.name)) or 0)

    return server.call(work())


def reference(server: ServerThread, tenant: Tenant, kind: str, timezone: str = "Europe/Moscow",
              first_answered: bool = False, process_missed: bool = False, **params: Any) -> bytes:
    """The export as the row encoders write it, from rows of the ORM query (UTCDateTime parsed)."""
    domain_id = domain_id_of(server, tenant)
    now = server.runtime.clock.now()
    is_inner = kind.startswith("inner")
    if is_inner:
        f: Any = history.inner_filter(now=now, timezone=timezone, **params)
        stmt = inner_query(domain_id, f)
    else:
        groups = params.pop("groups", None)
        statuses = params.pop("missedStatus", None)
        f = history.external_filter(now=now, timezone=timezone, groups=[groups] if groups else None,
                                    missed_status=[statuses] if statuses else None, **params)
        stmt = external_query(domain_id, f)

    async def rows() -> list[Any]:
        async with server.runtime.sessions() as s:
            return list((await s.execute(stmt)).all())

    found = server.call(rows())
    if kind == "csv":
        return "".join(external_csv(r, tenant.name) for r in found).encode()
    if kind == "json":
        return b"[" + b",".join(orjson.dumps(external_json(r, first_answered, process_missed))
                                for r in found) + b"]"
    if kind == "inner/csv":
        return "".join(inner_csv(r, tenant.name) for r in found).encode()
    return b"[" + b",".join(orjson.dumps(inner_json(r)) for r in found) + b"]"


def export(tenant: Tenant, kind: str, **params: Any) -> bytes:
    r = tenant.client.get(f"/crmapi/v1/history/{kind}", params=params)
    assert r.status_code == 200, r.text
    return r.content


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 rows: chunk edges inside every export below (the server runs in this process)."""
    monkeypatch.setattr(history, "CSV_CHUNK_ROWS", 3)
    monkeypatch.setattr(history, "JSON_CHUNK_ROWS", 3)


# --- the chunk encoders alone, on raw SQLite rows -------------------------------------------------

def test_chunk_encoders_match_the_row_encoders(tmp_path: Path) -> None:
    """The same rows read both ways from one store: ORM query + row encoders, raw cursor + chunk encoders."""
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    CallRecord.__table__.create(engine)
    InnerCallRecord.__table__.create(engine)
    rows = EDGE_ROWS + [ext(f"n{i}", T0 + timedelta(minutes=i), rating=i % 3 or None) for i in range(20)]
    inner_rows = [inner("i1", T0, link="a,b\r\nc", from_name='"Ü"'), inner("i2", T0, status="noanswer", duration=0)]
    with engine.begin() as conn:
        conn.execute(insert(CallRecord), [{"domain_id": 1, **r} for r in rows])
        conn.execute(insert(InnerCallRecord), [{"domain_id": 1, **r} for r in inner_rows])
    f = ExternalFilter(lo=T0 - timedelta(days=1), hi=T0 + timedelta(days=1))
    fi = InnerFilter(lo=f.lo, hi=f.hi)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None

        def both(stmt: Any, fast_stmt: Any) -> tuple[list[Any], list[Any]]:
            return list(conn.execute(stmt).all()), raw.execute(*driver_sql(fast_stmt, engine.dialect)).fetchall()

        ref, fast = both(external_query(1, f), external_query(1, f, EXTERNAL_CSV_COLUMNS))
        assert len(ref) == len(rows)
        assert history.external_csv_chunk(fast, "d.test") == "".join(
            external_csv(r, "d.test") for r in ref).encode()
        ref, fast = both(external_query(1, f), external_query(1, f, EXTERNAL_EXPORT_COLUMNS))
        for first_answered in (False, True):
            for process_missed in (False, True):
                assert history.external_json_chunk(fast, first_answered, process_missed) == b",".join(
                    orjson.dumps(external_json(r, first_answered, process_missed)) for r in ref)
        ref, fast = both(inner_query(1, fi), inner_query(1, fi, INNER_EXPORT_COLUMNS))
        assert history.inner_csv_chunk(fast, "d.test") == "".join(inner_csv(r, "d.test") for r in ref).encode()
        assert history.inner_json_chunk(fast) == b",".join(orjson.dumps(inner_json(r)) for r in ref)
    engine.dispose()


def test_driver_sql_processes_and_expands_parameters() -> None:
    f = ExternalFilter(lo=datetime(2025, 1, 1, 3, tzinfo=ZoneInfo("Europe/Moscow")), hi=T0, groups=("a", "b"),
                       missed_statuses=(1, 3), limit=7, user="u")
    sql, params = driver_sql(external_query(5, f, EXTERNAL_CSV_COLUMNS), sqlite.dialect())
    assert sql.count("?") == len(params)
    assert params[-11:] == (5, "2025-01-01 00:00:00.000000", "2025-03-01 09:00:00.000000", "u", "u", "a", "b", 1, 3,
                            7, 0)
    assert "call_history.start AS utc_text" in sql  # the stored text itself, no conversion per row
    pg = str(external_query(5, f, EXTERNAL_CSV_COLUMNS).compile(dialect=postgresql.dialect()))
    assert "to_char(call_history.start, 'YYYY-MM-DD HH24:MI:SS')" in pg


# --- through the server, both backends --------------------------------------------------------

@pytest.mark.usefixtures("small_chunks")
def test_edge_rows_csv_and_json(vserver: ServerThread, vtenant: Tenant) -> None:
    add(vserver, vtenant, EDGE_ROWS)
    csv = export(vtenant, "csv", **WIDE)
    assert csv == reference(vserver, vtenant, "csv", **WIDE)
    lines = csv.split(b"\r\n")
    assert len(lines) == len(EDGE_ROWS) + 1 and lines[-1] == b""
    assert lines[0].startswith(b"q10,in,") and lines[1].startswith(b"q9,in,")  # newest first, then the higher id
    assert b"q1,in,79101234567,admin@" in csv and csv.count(b"\n") == len(EDGE_ROWS)
    assert f"q2,in,79101234567,admin@{vtenant.name},74951234567,2025-03-01T09:00:00Z,5,23,a  b c d  e\r\n".encode() \
        in csv
    assert f'q"3,missed,79101234567,sales@{vtenant.name},'.encode() in csv
    assert f"q4,missed,79101234567,ivr@{vtenant.name},".encode() in csv
    assert f"q5,missed,79101234567,pbx@{vtenant.name},".encode() in csv
    assert f"q6,out,79101234567,admin@{vtenant.name},74951234567,2025-03-01T09:00:04Z,5,23,,5\r\n".encode() in csv
    assert b",https://x/\xc3\xbc/" in csv  # UTF-8
    assert b"a=1 b=\"2\",0\r\n" in csv  # a zero rating is written, a NULL one is not
    for fa in ("false", "true"):
        for pm in ("false", "true"):
            body = export(vtenant, "json", first_answered=fa, processMissed=pm, **WIDE)
            assert body == reference(vserver, vtenant, "json", first_answered=fa == "true",
                                     process_missed=pm == "true", **WIDE)
    items = orjson.loads(body)
    assert [i["uid"] for i in items][:2] == ["q10", "q9"]
    q1 = next(i for i in items if i["uid"] == "q1")
    assert q1["rating"] == 0 and q1["note"] == 'примечание, "в кавычках"\r\nвторая строка'
    assert q1["record"] == 'https://x/r.mp3?a=1,b="2"'  # JSON keeps the link as it is
    assert "rating" not in next(i for i in items if i["uid"] == "q2")


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("params", [
    {},
    {"type": "in"}, {"type": "out"}, {"type": "missed"},
    {"limit": 0}, {"limit": 1}, {"limit": 3}, {"limit": 4}, {"limit": 500},
    {"user": "admin"}, {"user": "nobody"},
    {"client": "+7 (910) 123"}, {"diversion": "74951234567"},
    {"groups": "sales"}, {"groups": "sales,support"}, {"missedStatus": "3"}, {"missedStatus": "3,4"},
    {"start": "20250301T090001Z", "end": "2025-03-01T09:00:04Z"},
    {"start": "20250301T090000Z", "end": "20250301T090000Z"},  # one second: q1 and q2 (09:00:00.999999)
])
def test_filters_match_the_reference(vserver: ServerThread, vtenant: Tenant, params: dict[str, Any]) -> None:
    add(vserver, vtenant, EDGE_ROWS)
    query = {**WIDE, **params}
    for kind in ("csv", "json"):
        assert export(vtenant, kind, **query) == reference(vserver, vtenant, kind, **query), kind
    if params.get("end") == params.get("start") == "20250301T090000Z":
        assert [i["uid"] for i in orjson.loads(export(vtenant, "json", **query))] == ["q2", "q1"]


@pytest.mark.usefixtures("small_chunks")
def test_empty_exports(vtenant: Tenant) -> None:
    assert export(vtenant, "csv", **WIDE) == b""
    assert export(vtenant, "json", **WIDE) == b"[]"
    assert export(vtenant, "inner/csv", **WIDE) == b""
    assert export(vtenant, "inner/json", **WIDE) == b"[]"


@pytest.mark.usefixtures("small_chunks")
def test_inner_edge_rows(vserver: ServerThread, vtenant: Tenant) -> None:
    rows = [inner(f"i{i}", T0 + timedelta(minutes=i // 2, microseconds=i), link="x,y\r\nz" if i % 3 == 0 else "",
                  from_name='Ф "Ё"', status="noanswer" if i % 2 else "success",
                  from_login="manager" if i % 4 else "admin")
            for i in range(11)]
    add(vserver, vtenant, rows, inner_rows=True)
    for params in ({}, {"type": "success"}, {"type": "missed"}, {"user": "admin"}, {"limit": 4}):
        query = {**WIDE, **params}
        for kind in ("inner/csv", "inner/json"):
            assert export(vtenant, kind, **query) == reference(vserver, vtenant, kind, **query), (kind, params)
    assert b"x y  z\r\n" in export(vtenant, "inner/csv", **WIDE)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("timezone", ["Europe/Moscow", "America/New_York", "Asia/Kamchatka", "UTC"])
def test_periods_in_the_domain_timezone(vserver: ServerThread, timezone: str) -> None:
    """Calls on both sides of local midnights (to the microsecond): the §4.5 windows cut them alike."""
    tenant = create_tenant(vserver, demo_data=False, timezone=timezone)
    try:
        tz = ZoneInfo(timezone)
        today = vserver.runtime.clock.now().astimezone(tz).date()
        rows = []
        for days in (0, -1, -7, -31):
            day = today + timedelta(days=days)
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
            rows += [ext(f"m{days}", midnight), ext(f"b{days}", midnight - timedelta(microseconds=1)),
                     ext(f"s{days}", midnight + timedelta(seconds=1), status="Missed")]
        add(vserver, tenant, rows)
        for period in ("today", "yesterday", "this_week", "last_week", "this_month", "last_month"):
            for kind in ("csv", "json"):
                got = export(tenant, kind, period=period)
                assert got == reference(vserver, tenant, kind, timezone=timezone, period=period), (period, kind)
        today_ids = [i["uid"] for i in orjson.loads(export(tenant, "json", period="today"))]
        assert today_ids == ["s0", "m0"]
        assert [i["uid"] for i in orjson.loads(export(tenant, "json", period="yesterday"))] == ["b0", "s-1", "m-1"]
    finally:
        tenant.client.close()


def test_many_rows_in_default_chunks(vserver: ServerThread, vtenant: Tenant) -> None:
    """More rows than one chunk (2000): the chunks follow each other in order, nothing doubled."""
    n = 4321
    add(vserver, vtenant, [ext(f"r{i:05d}", T0 + timedelta(seconds=i // 2), rating=(i % 6) or None,
                               link=f"https://x/{i}" if i % 2 else "") for i in range(n)])
    csv = export(vtenant, "csv", **WIDE)
    assert csv == reference(vserver, vtenant, "csv", **WIDE)
    assert csv.count(b"\r\n") == n
    assert export(vtenant, "json", **WIDE) == reference(vserver, vtenant, "json", **WIDE)


def export_threads() -> int:
    """SQLite exports an export thread is reading now."""
    return reader.exports_running()


def test_client_leaving_mid_export_ends_the_reader(vserver: ServerThread, vtenant: Tenant, backend: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader waits for the loop (at most a few chunks ahead) and ends when the client goes away."""
    monkeypatch.setattr(history, "CSV_CHUNK_ROWS", 50)
    n = 10_000  # ~10 MB: more than the socket buffers (the client's kept small) and the chunks waiting
    add(vserver, vtenant, [ext(f"r{i}", T0 + timedelta(seconds=i), link="https://x/" + "y" * 950) for i in range(n)])
    before = export_threads()
    small = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)])
    with httpx.Client(base_url=vserver.url, headers={"X-API-KEY": vtenant.api_key}, transport=small) as client, \
            client.stream("GET", "/crmapi/v1/history/csv", params=WIDE) as r:
        assert r.status_code == 200
        chunks = r.iter_bytes()  # kept: a dropped iterator closes the response
        assert next(chunks).startswith(f"r{n - 1},in,".encode())
        time.sleep(0.5)
        if backend == "sqlite":
            assert export_threads() == before + 1  # waiting for the client, not done ahead of it
    deadline = time.monotonic() + 10
    while export_threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert export_threads() == before
    assert export(vtenant, "csv", limit=2, **WIDE).count(b"\r\n") == 2  # and the server goes on
