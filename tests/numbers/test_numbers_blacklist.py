"""002 §11 Черный список: numbers and masks, deletion, block-anonymous, statistics, admission."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.blacklist import BlockDecision
from vpbx.services import blacklist
from vpbx.store.tables import Domain
from vpbx.testing.server import ServerThread, Tenant

V1 = "/crmapi/v1"
SEED_ADD = [{"telnum": "79267616794", "comment": "text"}, {"telnum": "749512345*", "comment": ""}]


def record(server: ServerThread, operator: Any, tenant: Tenant, caller: str | None, age: timedelta,
           times: int = 1) -> None:
    async def work(session: AsyncSession, domain: Domain) -> None:
        for _ in range(times):
            await blacklist.record_blocked_call(session, domain.id, caller, "74951234567",
                                                server.runtime.clock.now() - age)

    operator.run(tenant, work)


def blocked(operator: Any, tenant: Tenant, caller: str | None) -> BlockDecision:
    async def work(session: AsyncSession, domain: Domain) -> BlockDecision:
        return await blacklist.is_caller_blocked(session, domain.id, caller)

    result: BlockDecision = operator.run(tenant, work)
    return result


def test_list_reproduces_the_seed_example(server: ServerThread, tenant: Tenant, operator: Any) -> None:
    c = tenant.client
    assert c.get(f"{V1}/blacklist/telnums").json() == []
    body = [{"telnum": "74951904198", "comment": "123"}, {"telnum": "74953808397", "comment": "qwe"},
            {"telnum": "79267616794", "comment": "Спам"}, {"telnum": "749512345*", "comment": "Спам"}]
    assert c.post(f"{V1}/blacklist/telnums", json=body).status_code == 204
    record(server, operator, tenant, "+7 (495) 123-45-67", timedelta(days=30), times=11)
    assert c.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json() == [
        {"telnum": "74951904198", "comment": "123", "week": 0, "year": 0},
        {"telnum": "74953808397", "comment": "qwe", "week": 0, "year": 0},
        {"telnum": "79267616794", "comment": "Спам", "week": 0, "year": 0},
        {"telnum": "749512345*", "comment": "Спам", "week": 0, "year": 11},
    ]
    assert c.get(f"{V1}/blacklist/telnums").json() == [{"telnum": i["telnum"], "comment": i["comment"]} for i in body]


def test_add_and_delete_reproduce_the_seed_examples(tenant: Tenant) -> None:
    c = tenant.client
    r = c.post(f"{V1}/blacklist/telnums", json=SEED_ADD)
    assert r.status_code == 204 and r.content == b""
    c.post(f"{V1}/blacklist/telnums", json=[{"telnum": "74953808397"}, {"telnum": "79261904198"}])
    assert [i["telnum"] for i in c.get(f"{V1}/blacklist/telnums").json()] == [
        "79267616794", "749512345*", "74953808397", "79261904198"]
    r = c.delete(f"{V1}/blacklist/telnums?telnum=79261904198&telnum=749512345*&telnum=74953808397")
    assert r.status_code == 204
    assert c.get(f"{V1}/blacklist/telnums").json() == [{"telnum": "79267616794", "comment": "text"}]


def test_numbers_are_normalised_and_readding_updates_the_comment(tenant: Tenant) -> None:
    c = tenant.client
    c.post(f"{V1}/blacklist/telnums", json=[{"telnum": "+7 (926) 761-67-94", "comment": "a"},
                                            {"telnum": "7 495 12-34*", "comment": "m"}])
    c.post(f"{V1}/blacklist/telnums", json=[{"telnum": "89267616794", "comment": "b"}])
    assert c.get(f"{V1}/blacklist/telnums").json() == [{"telnum": "79267616794", "comment": "b"},
                                                       {"telnum": "74951234*", "comment": "m"}]
    assert c.delete(f"{V1}/blacklist/telnums", params={"telnum": "8 926 761 67 94"}).status_code == 204
    assert c.delete(f"{V1}/blacklist/telnums", params={"telnum": "79000000000"}).status_code == 204  # idempotent
    assert c.get(f"{V1}/blacklist/telnums").json() == [{"telnum": "74951234*", "comment": "m"}]


@pytest.mark.parametrize("body,field", [
    ([{"telnum": "hello"}], "0.telnum"),
    ([{"telnum": "79267616794"}, {"telnum": "12"}], "1.telnum"),
    ([{"telnum": "7926*abc"}], "0.telnum"),
    ([{"telnum": "***"}], "0.telnum"),
    ([{"comment": "x"}], "0.telnum"),
    ([{"telnum": ""}], "0.telnum"),
    ([], "body"),
    ({"telnum": "79267616794"}, "body"),
])
def test_add_validation(tenant: Tenant, body: Any, field: str) -> None:
    r = tenant.client.post(f"{V1}/blacklist/telnums", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    assert any(e["field"] == field for e in r.json()["errors"]), r.json()
    assert tenant.client.get(f"{V1}/blacklist/telnums").json() == []  # nothing added


@pytest.mark.parametrize("query", ["", "?telnum=abc", "?telnum=79267616794&telnum=12"])
def test_delete_validation(tenant: Tenant, query: str) -> None:
    tenant.client.post(f"{V1}/blacklist/telnums", json=SEED_ADD)
    r = tenant.client.delete(f"{V1}/blacklist/telnums{query}")
    assert r.status_code == 400 and r.json()["errors"][0]["field"].startswith("telnum")
    assert len(tenant.client.get(f"{V1}/blacklist/telnums").json()) == 2


def test_with_must_be_statistics(tenant: Tenant) -> None:
    assert tenant.client.get(f"{V1}/blacklist/telnums", params={"with": "other"}).status_code == 400


def test_block_anonymous(tenant: Tenant, operator: Any) -> None:
    c = tenant.client
    assert c.get(f"{V1}/blacklist/block-anonymous").json() == {"state": False}
    assert blocked(operator, tenant, None).blocked is False
    assert c.post(f"{V1}/blacklist/block-anonymous").status_code == 204
    assert c.get(f"{V1}/blacklist/block-anonymous").json() == {"state": True}
    for caller in (None, "", "anonymous", "Anonymous <sip:anonymous@anonymous.invalid>"):
        assert blocked(operator, tenant, caller) == BlockDecision(True, "anonymous")
    assert blocked(operator, tenant, "79161234567").blocked is False
    assert c.delete(f"{V1}/blacklist/block-anonymous").status_code == 204
    assert c.get(f"{V1}/blacklist/block-anonymous").json() == {"state": False}
    assert blocked(operator, tenant, None).blocked is False


def test_admission_uses_the_list(tenant: Tenant, operator: Any) -> None:
    tenant.client.post(f"{V1}/blacklist/telnums", json=[*SEED_ADD, {"telnum": "7495123456*"}])
    exact = blocked(operator, tenant, "+7 926 761-67-94")
    assert (exact.blocked, exact.reason, exact.entry and exact.entry.telnum) == (True, "number", "79267616794")
    mask = blocked(operator, tenant, "8 (495) 123-45-67")
    assert (mask.blocked, mask.reason, mask.entry and mask.entry.telnum) == (True, "mask", "749512345*")
    assert blocked(operator, tenant, "74951234467").blocked is False
    assert blocked(operator, tenant, "79267616795").blocked is False


def test_statistics_windows(server: ServerThread, tenant: Tenant, operator: Any) -> None:
    tenant.client.post(f"{V1}/blacklist/telnums", json=SEED_ADD)
    record(server, operator, tenant, "79267616794", timedelta(hours=1), times=2)
    record(server, operator, tenant, "79267616794", timedelta(days=6, hours=20))
    record(server, operator, tenant, "79267616794", timedelta(days=8))
    record(server, operator, tenant, "79267616794", timedelta(days=364))
    record(server, operator, tenant, "79267616794", timedelta(days=366))  # older than a year
    record(server, operator, tenant, "74951234599", timedelta(days=1))
    record(server, operator, tenant, "79990001122", timedelta(days=1))  # no longer listed
    record(server, operator, tenant, None, timedelta(days=1))  # anonymous
    assert tenant.client.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json() == [
        {"telnum": "79267616794", "comment": "text", "week": 3, "year": 5},
        {"telnum": "749512345*", "comment": "", "week": 1, "year": 1},
    ]


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client],
                custom_role: Callable[[list[str]], str]) -> None:
    ops: dict[str, list[tuple[str, str, Any]]] = {
        "blacklist.get": [("GET", "/blacklist/telnums", None), ("GET", "/blacklist/block-anonymous", None)],
        "blacklist.create": [("POST", "/blacklist/telnums", SEED_ADD)],
        "blacklist.edit": [("POST", "/blacklist/block-anonymous", None), ("DELETE", "/blacklist/block-anonymous",
                                                                          None)],
        "blacklist.delete": [("DELETE", "/blacklist/telnums?telnum=79267616794", None)],
    }
    nobody = role_client("user")
    for calls in ops.values():
        for method, path, body in calls:
            assert nobody.request(method, V1 + path, json=body).status_code == 403, path
    for right, calls in ops.items():
        client = role_client(custom_role([right]))
        for method, path, body in calls:
            assert client.request(method, V1 + path, json=body).status_code in (200, 204), (right, path)
        other = next(r for r in ops if r != right)
        method, path, body = ops[other][0]
        assert client.request(method, V1 + path, json=body).status_code == 403


def test_tenant_isolation(server: ServerThread, tenant: Tenant, other_tenant: Tenant, operator: Any) -> None:
    c, o = tenant.client, other_tenant.client
    c.post(f"{V1}/blacklist/telnums", json=SEED_ADD)
    c.post(f"{V1}/blacklist/block-anonymous")
    record(server, operator, tenant, "79267616794", timedelta(days=1), times=3)
    assert o.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json() == []
    assert o.get(f"{V1}/blacklist/block-anonymous").json() == {"state": False}
    assert blocked(operator, other_tenant, "79267616794").blocked is False
    assert blocked(operator, other_tenant, None).blocked is False
    assert o.delete(f"{V1}/blacklist/telnums", params={"telnum": ["79267616794", "749512345*"]}).status_code == 204
    assert o.delete(f"{V1}/blacklist/block-anonymous").status_code == 204
    o.post(f"{V1}/blacklist/telnums", json=[{"telnum": "79267616794", "comment": "theirs"}])
    assert o.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json() == [
        {"telnum": "79267616794", "comment": "theirs", "week": 0, "year": 0}]
    assert c.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json() == [
        {"telnum": "79267616794", "comment": "text", "week": 3, "year": 3},
        {"telnum": "749512345*", "comment": "", "week": 0, "year": 0}]
    assert c.get(f"{V1}/blacklist/block-anonymous").json() == {"state": True}
