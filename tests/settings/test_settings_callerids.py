"""002 §13: caller IDs, and the configuration the engine chooses from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.callerid import CallerIdConfig, CallerIdRule, choose_caller_id
from vpbx.services import callerids
from vpbx.services.errors import Invalid
from vpbx.testing.server import Tenant

MAIN, SALES, ALTAI = "79262005060", "79264010121", "79267616794"
# The demo company's first number: its main number (9.1 is_main_phone), which is 13.3's main too (issue 13).
DEMO_MAIN = "74951234567"


def errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    return [e["field"] for e in r.json()["errors"]]


def ours(telnums: list[dict[str, Any]], *numbers: str) -> list[dict[str, Any]]:
    return [t for t in telnums if t["telnum"] in numbers]


def config(run: Callable[..., Any]) -> CallerIdConfig:
    async def work(session: AsyncSession, domain_id: int) -> CallerIdConfig:
        return await callerids.caller_id_config(session, domain_id)

    result: CallerIdConfig = run(work)
    return result


def set_outgoing(run: Callable[..., Any], telnum: str, enabled: bool) -> None:
    async def work(session: AsyncSession, domain_id: int) -> None:
        await callerids.set_outgoing(session, domain_id, telnum, enabled)

    run(work)


def test_empty(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/caller-ids")
    assert r.status_code == 200
    assert r.json() == {"main": DEMO_MAIN, "users": [], "groups": [], "regions": []}


def test_telnums_seed_example(tenant: Tenant, add_numbers: Callable[..., None], run: Callable[..., Any]) -> None:
    add_numbers(MAIN, SALES)
    assert ours(tenant.client.get("/crmapi/v1/caller-ids/telnums").json(), MAIN, SALES) == [
        {"telnum": MAIN, "enabled": True}, {"telnum": SALES, "enabled": True}]
    set_outgoing(run, "+7 926 401-01-21", False)
    assert ours(tenant.client.get("/crmapi/v1/caller-ids/telnums").json(), MAIN, SALES) == [
        {"telnum": MAIN, "enabled": True}, {"telnum": SALES, "enabled": False}]
    with pytest.raises(Invalid):
        set_outgoing(run, "79990000000", True)  # not the domain's


def test_seed_example(tenant: Tenant, add_numbers: Callable[..., None], run: Callable[..., Any]) -> None:
    add_numbers(MAIN, SALES, ALTAI)
    assert tenant.client.post("/crmapi/v1/caller-ids/main", json={"telnum": MAIN}).status_code == 204
    assert tenant.client.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN, "login": "admin"}).status_code == 204
    assert tenant.client.post("/crmapi/v1/caller-ids/groups", json={"telnum": SALES, "id": "sales"}).status_code == 204
    r = tenant.client.post("/crmapi/v1/caller-ids/regions", json={"telnum": ALTAI, "id": "2"})  # mode: all
    assert r.status_code == 204
    assert tenant.client.get("/crmapi/v1/caller-ids").json() == {
        "main": MAIN,
        "users": [{"login": "admin", "name": "Администратор", "telnum": MAIN}],
        "groups": [{"id": "sales", "name": "Отдел продаж", "telnum": SALES}],
        "regions": [{"id": "2", "name": "Алтай", "telnum": ALTAI, "mode": "all"}],
    }
    cfg = config(run)
    assert cfg.main == MAIN and cfg.users == {"admin": MAIN} and cfg.groups == {"sales": SALES}
    assert [(r.region_id, r.mode.value, r.telnum) for r in cfg.regions] == [(2, "all", ALTAI)]
    assert cfg.enabled >= {MAIN, SALES, ALTAI}
    assert choose_caller_id(cfg, client="74951234567", login="admin").rule is CallerIdRule.USER  # type: ignore[union-attr]
    choice = choose_caller_id(cfg, client="74951234567", login="ivan", groups=["sales"])
    assert choice is not None and (choice.telnum, choice.rule) == (SALES, CallerIdRule.GROUP)
    choice = choose_caller_id(cfg, client="73882123456", login="sergey", groups=["support"])  # Altai fixed line
    assert choice is not None and (choice.telnum, choice.rule) == (ALTAI, CallerIdRule.REGION)
    choice = choose_caller_id(cfg, client="74951234567", login="sergey", clid=SALES)
    assert choice is not None and choice.rule is CallerIdRule.CLID
    choice = choose_caller_id(cfg, client="74951234567", login="sergey")
    assert choice is not None and (choice.telnum, choice.rule) == (MAIN, CallerIdRule.MAIN)


def test_replace_and_remove(tenant: Tenant, add_numbers: Callable[..., None]) -> None:
    add_numbers(MAIN, SALES, ALTAI)
    c = tenant.client
    c.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN, "login": "admin"})
    c.post("/crmapi/v1/caller-ids/users", json={"telnum": "+7 (926) 401-01-21", "login": "701"})  # by extension
    c.post("/crmapi/v1/caller-ids/groups", json={"telnum": SALES, "id": "sales"})
    c.post("/crmapi/v1/caller-ids/regions", json={"telnum": ALTAI, "id": 43, "mode": "mobile"})
    c.post("/crmapi/v1/caller-ids/regions", json={"telnum": MAIN, "id": "43", "mode": "fixed"})
    c.post("/crmapi/v1/caller-ids/regions", json={"telnum": SALES, "id": "43", "mode": "fixed"})  # replaces
    body = c.get("/crmapi/v1/caller-ids").json()
    assert body["users"] == [{"login": "admin", "name": "Администратор", "telnum": SALES}]
    assert body["regions"] == [
        {"id": "43", "name": "Москва и Московская обл.", "telnum": ALTAI, "mode": "mobile"},
        {"id": "43", "name": "Москва и Московская обл.", "telnum": SALES, "mode": "fixed"},
    ]
    assert c.delete("/crmapi/v1/caller-ids/users/admin").status_code == 204
    assert c.delete("/crmapi/v1/caller-ids/users/admin").status_code == 204  # nothing left: still fine
    assert c.delete("/crmapi/v1/caller-ids/groups/sales").status_code == 204
    assert c.delete("/crmapi/v1/caller-ids/regions/43").status_code == 204  # mode all: none set
    assert len(c.get("/crmapi/v1/caller-ids").json()["regions"]) == 2
    assert c.delete("/crmapi/v1/caller-ids/regions/43?mode=fixed").status_code == 204
    body = c.get("/crmapi/v1/caller-ids").json()
    assert body["users"] == [] and body["groups"] == []
    assert [r["mode"] for r in body["regions"]] == ["mobile"]
    assert c.delete("/crmapi/v1/caller-ids/users/nobody").status_code == 404
    assert c.delete("/crmapi/v1/caller-ids/groups/nope").status_code == 404
    assert c.delete("/crmapi/v1/caller-ids/regions/999").status_code == 404
    assert errors(c.delete("/crmapi/v1/caller-ids/regions/43?mode=sometimes")) == ["mode"]


def test_validation(tenant: Tenant, add_numbers: Callable[..., None], run: Callable[..., Any],
                    other_tenant: Tenant) -> None:
    add_numbers(MAIN, SALES)
    add_numbers(ALTAI, tenant_name=other_tenant.name)
    set_outgoing(run, SALES, False)
    c = tenant.client
    assert errors(c.post("/crmapi/v1/caller-ids/main", json={"telnum": "abc"})) == ["telnum"]
    assert errors(c.post("/crmapi/v1/caller-ids/main", json={})) == ["telnum"]
    assert errors(c.post("/crmapi/v1/caller-ids/main", json={"telnum": "79990001122"})) == ["telnum"]  # not ours
    assert errors(c.post("/crmapi/v1/caller-ids/main", json={"telnum": ALTAI})) == ["telnum"]  # other tenant's
    assert errors(c.post("/crmapi/v1/caller-ids/main", json={"telnum": SALES})) == ["telnum"]  # disabled
    assert errors(c.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN})) == ["login"]
    assert errors(c.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN, "login": "nobody"})) == ["login"]
    assert errors(c.post("/crmapi/v1/caller-ids/groups", json={"telnum": MAIN, "id": "nope"})) == ["id"]
    assert errors(c.post("/crmapi/v1/caller-ids/groups", json={"telnum": MAIN})) == ["id"]
    assert errors(c.post("/crmapi/v1/caller-ids/regions", json={"telnum": MAIN, "id": "999"})) == ["id"]
    assert errors(c.post("/crmapi/v1/caller-ids/regions", json={"telnum": MAIN, "id": "Алтай"})) == ["id"]
    assert errors(c.post("/crmapi/v1/caller-ids/regions",
                         json={"telnum": MAIN, "id": "2", "mode": "landline"})) == ["mode"]
    assert c.get("/crmapi/v1/caller-ids").json() == {"main": DEMO_MAIN, "users": [], "groups": [], "regions": []}
    # Their numbers and settings are theirs.
    assert ours(other_tenant.client.get("/crmapi/v1/caller-ids/telnums").json(), MAIN, SALES, ALTAI) == [
        {"telnum": ALTAI, "enabled": True}]
    assert c.post("/crmapi/v1/caller-ids/main", json={"telnum": "8 926 200-50-60"}).status_code == 204
    assert c.get("/crmapi/v1/caller-ids").json()["main"] == MAIN
    assert other_tenant.client.get("/crmapi/v1/caller-ids").json()["main"] == DEMO_MAIN


def test_disabled_number_leaves_config(tenant: Tenant, add_numbers: Callable[..., None],
                                       run: Callable[..., Any]) -> None:
    add_numbers(MAIN, SALES)
    tenant.client.post("/crmapi/v1/caller-ids/main", json={"telnum": MAIN})
    tenant.client.post("/crmapi/v1/caller-ids/users", json={"telnum": SALES, "login": "ivan"})
    set_outgoing(run, SALES, False)
    cfg = config(run)
    assert cfg.users == {} and cfg.main == MAIN and SALES not in cfg.enabled
    choice = choose_caller_id(cfg, client="74951234567", login="ivan", clid=SALES)
    assert choice is not None and (choice.telnum, choice.rule) == (MAIN, CallerIdRule.MAIN)


def test_deleted_employee_and_department(tenant: Tenant, add_numbers: Callable[..., None]) -> None:
    add_numbers(MAIN)
    tenant.client.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN, "login": "maria"})
    tenant.client.post("/crmapi/v1/caller-ids/groups", json={"telnum": MAIN, "id": "support"})
    assert tenant.client.delete("/crmapi/v1/users/maria").status_code == 204
    assert tenant.client.delete("/crmapi/v1/groups/support").status_code == 204
    body = tenant.client.get("/crmapi/v1/caller-ids").json()
    assert body["users"] == [] and body["groups"] == []


def test_regions_list(tenant: Tenant) -> None:
    regions = tenant.client.get("/crmapi/v1/caller-ids/regions").json()
    assert {"id": "2", "name": "Алтай"} in regions
    assert {"id": "43", "name": "Москва и Московская обл."} in regions
    assert len({r["id"] for r in regions}) == len(regions) > 80


def test_rights(tenant: Tenant, add_numbers: Callable[..., None], client_with: Callable[..., httpx.Client]) -> None:
    add_numbers(MAIN)
    reader = client_with("callerids.get")
    for path in ("/crmapi/v1/caller-ids", "/crmapi/v1/caller-ids/telnums", "/crmapi/v1/caller-ids/regions"):
        assert reader.get(path).status_code == 200
        assert client_with("more.get").get(path).status_code == 403
    assert reader.post("/crmapi/v1/caller-ids/main", json={"telnum": MAIN}).status_code == 403
    editor = client_with("callerids.edit")
    assert editor.post("/crmapi/v1/caller-ids/main", json={"telnum": MAIN}).status_code == 204
    assert editor.post("/crmapi/v1/caller-ids/users", json={"telnum": MAIN, "login": "admin"}).status_code == 204
    assert editor.delete("/crmapi/v1/caller-ids/users/admin").status_code == 403
    deleter = client_with("callerids.delete")
    assert deleter.delete("/crmapi/v1/caller-ids/users/admin").status_code == 204
    assert deleter.delete("/crmapi/v1/caller-ids/regions/2").status_code == 204
