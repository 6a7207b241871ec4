"""The causes of 5xx and cut streams the fuzzing of issue 19 found, each pinned on its own (both backends)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from vpbx.api import errors
from vpbx.engine.traffic import arrivals
from vpbx.secrets_store import box_for
from vpbx.services import branches as branch_service
from vpbx.services import history, tenancy
from vpbx.store.paging import MAX_ID, MAX_INT
from vpbx.testing.server import ServerThread, Tenant

TOO_BIG = MAX_INT + 1  # 2**63
LEGACY = "/sys/crm_api.wcgp"


def _field_errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["message"] == errors.VALIDATION_ERROR, body
    return [e["field"] for e in body["errors"]]


@pytest.fixture(scope="module")
def document(server: ServerThread) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def _integer(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return schema.get("type") == "integer" or any(s.get("type") == "integer" for s in schema.get("anyOf", []))


def _lists(doc: dict[str, Any], parameter: str) -> list[str]:
    """Every GET operation without path parameters that takes ``parameter`` as an integer in the query."""
    return sorted(path for path, ops in doc["paths"].items() if "{" not in path and "get" in ops
                  and any(p["name"] == parameter and p["in"] == "query" and _integer(p)
                          for p in ops["get"].get("parameters", [])))


# --- integers beyond 64 bits: 400 naming the field, everywhere ------------------------------------------------

def test_start_beyond_64_bits_is_refused_on_every_list(document: dict[str, Any], tenant: Tenant) -> None:
    lists = _lists(document, "start")
    assert {"/crmapi/v1/users", "/crmapi/v1/groups", "/crmapi/v1/telnums", "/crmapi/v1/branches",
            "/sim/v1/deliveries"} <= set(lists)
    for path in lists:
        assert _field_errors(tenant.client.get(path, params={"start": TOO_BIG})) == ["start"], path
        assert _field_errors(tenant.client.get(path, params={"start": str(10**40)})) == ["start"], path
        r = tenant.client.get(path, params={"start": MAX_INT})  # the largest offset is a valid (empty) page
        assert r.status_code == 200, (path, r.text)
        assert r.json()["items"] == [] and r.json()["info"]["start"] == MAX_INT, path


def test_ids_beyond_64_bits_are_refused(tenant: Tenant) -> None:
    for path in (f"/sim/v1/deliveries/{n}" for n in (TOO_BIG, 10**30, MAX_ID + 1)):
        assert _field_errors(tenant.client.get(path)) == ["delivery_id"]
    assert _field_errors(tenant.client.post(f"/sim/v1/deliveries/{TOO_BIG}/replay")) == ["delivery_id"]
    assert tenant.client.get(f"/sim/v1/deliveries/{MAX_ID}").status_code == 404
    # Ids that are text in the path (002 gives no type): not found, or a 400 naming ``id``.
    for path in (f"/crmapi/v1/webhook/{TOO_BIG}", f"/crmapi/v1/webhook/{MAX_ID + 1}",
                 f"/crmapi/v1/caller-ids/regions/{TOO_BIG}", f"/crmapi/v1/caller-ids/regions/{MAX_ID + 1}",
                 f"/crmapi/v1/telnums/74951234567/interval-schedule/{TOO_BIG}",
                 f"/crmapi/v1/media-catalog/holdmusic/{TOO_BIG}", f"/crmapi/v1/caller-ids/groups/{TOO_BIG}"):
        r = tenant.client.delete(path)
        assert r.status_code in (204, 400, 404), (path, r.status_code, r.text)
        if r.status_code == 400:
            assert _field_errors(r) == ["id"], (path, r.text)


HISTORY = ["/crmapi/v1/history/csv", "/crmapi/v1/history/json", "/crmapi/v1/history/inner/csv",
           "/crmapi/v1/history/inner/json"]


@pytest.mark.parametrize("path", HISTORY)
def test_history_limit_beyond_64_bits_is_a_400_not_a_cut_200(tenant: Tenant, path: str) -> None:
    for limit in (TOO_BIG, 10**30):
        assert _field_errors(tenant.client.get(path, params={"limit": limit, "period": "today"})) == ["limit"]
    r = tenant.client.get(path, params={"limit": MAX_INT, "period": "today"})
    assert r.status_code == 200, r.text
    if path.endswith("json"):
        assert r.json() == []  # a whole document, not a cut one
    else:
        assert r.text == ""


def test_legacy_history_limit_beyond_64_bits(tenant: Tenant) -> None:
    for limit in (str(TOO_BIG), "1" * 40):
        r = httpx.post(tenant.client.base_url.join(LEGACY), data={"cmd": "history", "token": tenant.legacy_token,
                                                                   "period": "today", "limit": limit}, timeout=30)
        assert (r.status_code, r.json()) == (400, {"error": "Invalid parameters"})
    r = httpx.post(tenant.client.base_url.join(LEGACY), data={"cmd": "history", "token": tenant.legacy_token,
                                                               "period": "today", "limit": str(MAX_INT)}, timeout=30)
    assert (r.status_code, r.text) == (200, "")


# --- a streamed export starts only once its query runs --------------------------------------------------------

async def _chunks(items: list[bytes | Exception]) -> AsyncGenerator[bytes, None]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


def test_an_export_that_fails_at_once_raises_before_any_byte() -> None:
    async def go() -> None:
        with pytest.raises(OverflowError):
            await history.opened(_chunks([OverflowError("too large")]))
        body = await history.opened(_chunks([b"a", b"b"]))
        assert [c async for c in body] == [b"a", b"b"]
        empty = await history.opened(_chunks([]))
        assert [c async for c in empty] == []

    asyncio.run(go())


# --- a branch key that HTTP cannot carry ---------------------------------------------------------------------

def test_branch_key_must_be_printable_ascii(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    base = "/crmapi/v1/branches"
    for key in ("ключ-ключ", "abc\u00e9", "tab\tinside"):
        r = tenant.client.post(base, json={"domain": "example1.com", "name": "Филиал", "key": key})
        assert _field_errors(r) == ["key"], key
    r = tenant.client.post(base, json={"domain": other_tenant.name, "name": "Филиал", "key": other_tenant.api_key,
                                       "url": server.url})
    assert r.status_code == 200, r.text
    assert _field_errors(tenant.client.put(f"{base}/{other_tenant.name}", json={"key": "ключ"})) == ["key"]

    # A key stored before the check (a store written by an earlier version): the sync says why, no 500.
    async def seal_unusable_key() -> None:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            b = await branch_service.get(session, domain.id, other_tenant.name)
            b.key_sealed = box_for(server.runtime.settings).seal("ключ")
            await session.commit()

    server.call(seal_unusable_key())
    r = tenant.client.post(f"{base}/{other_tenant.name}/sync")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "invalid_key" and "ASCII" in r.json()["error"]


# --- generated traffic at a rate that rounds to zero ---------------------------------------------------------

def test_tiny_positive_rates_place_no_calls(tenant: Tenant) -> None:
    assert list(arrivals(5e-324, 86400.0, random.Random(1))) == []
    assert list(arrivals(1e-300, 5e-324, random.Random(1))) == []
    r = tenant.client.post("/sim/v1/traffic", json={"calls_per_minute": 5e-324, "duration_s": 5e-324, "seed": 1})
    assert r.status_code == 201, r.text
    stopped = tenant.client.delete("/sim/v1/traffic")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["placed"] == 0


# --- bodies nested deep --------------------------------------------------------------------------------------

DEPTH = 100_000


def test_legacy_json_nested_deep_is_invalid_parameters(tenant: Tenant) -> None:
    for body in ('{"cmd": ' + "[" * DEPTH + "]" * DEPTH + "}", '{"cmd": "accounts", "x": ' + '{"a": ' * DEPTH
                 + "1" + "}" * DEPTH + "}"):
        r = httpx.post(tenant.client.base_url.join(LEGACY), params={"token": tenant.legacy_token},
                       content=body.encode(), headers={"Content-Type": "application/json"}, timeout=60)
        assert (r.status_code, r.json()) == (400, {"error": "Invalid parameters"})


def test_v1_json_nested_deep_is_a_validation_error(tenant: Tenant) -> None:
    body = '{"name": ' + "[" * DEPTH + "]" * DEPTH + "}"
    r = tenant.client.post("/crmapi/v1/users", content=body.encode(), headers={"Content-Type": "application/json"})
    assert _field_errors(r) == ["body"]


# --- a unique key the database enforces: a clear 400, never a 500 --------------------------------------------

def _real_integrity_error(url: str) -> IntegrityError:
    """A duplicate refused by a real database of the backend (its driver's own message and detail)."""
    async def go() -> IntegrityError:
        engine = create_async_engine(url)
        meta = MetaData()
        table = Table("fuzz_unique", meta, Column("id", Integer, primary_key=True), Column("domain_id", Integer),
                      Column("ext", String(10)), UniqueConstraint("domain_id", "ext"))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(meta.drop_all)
                await conn.run_sync(meta.create_all)
            async with engine.connect() as conn:
                await conn.execute(insert(table).values(domain_id=1, ext="100"))
                try:
                    await conn.execute(insert(table).values(domain_id=1, ext="100"))
                except IntegrityError as exc:
                    return exc
                raise AssertionError("the duplicate was stored")
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(meta.drop_all)
            await engine.dispose()

    return asyncio.run(go())


def test_a_constraint_violation_answers_400_naming_the_column(server: ServerThread) -> None:
    from fastapi import FastAPI

    exc = _real_integrity_error(server.settings.db)
    app = FastAPI()
    errors.install(app)

    @app.get("/race")
    async def race() -> None:
        raise exc

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/race")

    r = asyncio.run(call())
    assert r.status_code == 400
    assert r.json() == {"message": errors.VALIDATION_ERROR, "errors": [{"field": "ext", "message": "already exists"}]}


def test_concurrent_creates_never_answer_5xx(tenant: Tenant) -> None:
    """Many clients create the same login and extension at once: one wins, the others get a 400."""
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(tenant.client.base_url), headers=dict(tenant.client.headers),
                                     timeout=60) as client:
            return list(await asyncio.gather(*(
                client.post("/crmapi/v1/users", json={"login": "racer", "name": "Гонщик", "ext": "890"})
                for _ in range(16))))

    answers = asyncio.run(burst())
    assert sorted({r.status_code for r in answers}) in ([200, 400], [200]), [r.text for r in answers]
    assert sum(r.status_code == 200 for r in answers) == 1, [r.text for r in answers]
    for r in answers:
        if r.status_code == 400:
            assert r.json()["errors"], r.text


# --- /sim/v1 errors in the documents' format ----------------------------------------------------------------

def test_sim_400s_name_the_field(tenant: Tenant) -> None:
    r = tenant.client.post("/sim/v1/calls", json={"from": "12", "to": "74951234567"})
    assert r.json() == {"message": errors.VALIDATION_ERROR,
                        "errors": [{"field": "from", "message": "not a phone number"}]}, r.text
    r = tenant.client.put("/sim/v1/externals/79161234567", json={"auto": {"action": "dance"}})
    assert _field_errors(r) == ["auto.action"]


def test_every_error_answer_is_documented_with_its_body(document: dict[str, Any]) -> None:
    count = 0
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            count += 1
            responses = op["responses"]
            for status in ("400", "413", "429"):
                assert status in responses, (method, path, status)
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    assert answer.get("content", {}).get("application/json", {}).get("schema"), \
                        (method, path, status)
            if path.startswith("/sim/v1"):
                assert {"400", "401", "403", "404", "409"} <= set(responses), (method, path)
                assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
                    "/ValidationErrorOut")
    assert count >= 130
