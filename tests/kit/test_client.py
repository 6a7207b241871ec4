"""vpbx.client against the running test server: every operation the SDK offers, typed errors, paging,
streamed history, retries; and the generated sync client is up to date."""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vpbx.client import AsyncClient, Client, Forbidden, InvalidToken, NotFound, ServerError, ValidationError, _unasync
from vpbx.schemas.groups import GroupCreate, MemberIn
from vpbx.schemas.users import UserCreate, UserOut, UserUpdate
from vpbx.services import tenancy
from vpbx.testing.audio import tone_wav
from vpbx.testing.server import ServerThread, Tenant

MAIN = "74951234567"  # the demo company's main number


def called_in_this_module() -> set[str]:
    """Every method name this module calls (read from its source: the same under any test distribution)."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}


@pytest.fixture
def pbx(server: ServerThread, tenant: Tenant) -> Iterator[Any]:
    with Client(server.url, tenant.api_key, legacy_token=tenant.legacy_token) as client:
        yield client


def test_generated_sync_client_is_up_to_date() -> None:
    assert _unasync.TARGET.read_text(encoding="utf-8") == _unasync.generate(_unasync.SOURCE.read_text("utf-8")), \
        "run: python -m vpbx.client._unasync"


def test_users(pbx: Any) -> None:
    page = pbx.list_users(limit=3)
    assert len(page.items) == 3 and page.info.total == 10 and page.info.next == 3
    assert [u.login for u in pbx.iter_users(page_size=3)] == [u.login for u in pbx.list_users().items]
    assert len(list(pbx.iter_users(page_size=4))) == 10
    assert {u.status for u in pbx.list_users(with_status=True).items} <= {"online", "offline"}
    created = pbx.create_user(UserCreate(login="andy", name="Андрей", ext="850"))
    assert isinstance(created, UserOut) and created.ext == "850"
    assert pbx.get_user("andy", with_status=True).status in ("online", "offline")
    assert pbx.update_user("andy", UserUpdate(position="Инженер")).position == "Инженер"
    assert pbx.update_user("850", {"name": "Андрей Б."}).name == "Андрей Б."
    assert [u.login for u in pbx.iter_users(search="Андрей")] == ["andy"]
    assert [g.id for g in pbx.user_groups("ivan")] == ["sales"]
    assert pbx.get_subscription("ivan", "sales") is True
    pbx.set_subscription("ivan", False, "sales")
    assert pbx.get_subscription("ivan", "sales") is False and pbx.get_subscription("ivan") is False
    pbx.set_subscription("ivan", True)
    assert pbx.get_subscription("ivan") is True
    assert pbx.get_dnd("ivan") is False
    pbx.set_dnd("ivan", True)
    assert pbx.get_dnd("ivan") is True
    pbx.set_dnd("ivan", False)
    pbx.delete_user("andy")
    with pytest.raises(NotFound) as err:
        pbx.get_user("andy")
    assert (err.value.status, err.value.message) == (404, "Not found")


def test_validation_errors_carry_fields(pbx: Any) -> None:
    with pytest.raises(ValidationError) as err:
        pbx.create_user({"name": "X", "ext": "1"})
    assert err.value.status == 400 and err.value.message == "Validation error"
    assert [e.field for e in err.value.errors] == ["ext"] and "ext" in str(err.value)


def test_401_and_403(server: ServerThread, tenant: Tenant) -> None:
    with Client(server.url, "wrong-key", retries=0) as bad, pytest.raises(InvalidToken) as err:
        bad.list_users()
    assert err.value.message == "Invalid token"

    async def key() -> str:
        async with server.runtime.sessions() as s:
            d = await tenancy.get_domain(s, tenant.name)
            k = await tenancy.create_key(s, d, server.runtime.clock.now(), role="restricted_user", label="kit")
            await s.commit()
            return k

    with Client(server.url, server.call(key())) as restricted, pytest.raises(Forbidden) as forbidden:
        restricted.create_group({"name": "Нельзя"})
    assert forbidden.value.message == "Don't have permission to access"


def test_groups(pbx: Any) -> None:
    assert [g.id for g in pbx.iter_groups(page_size=2)] == [g.id for g in pbx.list_groups().items]
    assert pbx.list_groups(search="Отдел продаж").info.total == 1
    group = pbx.create_group(GroupCreate(name="Склад", ext="860", users=[MemberIn(login="ivan", calls_enable=True)]))
    assert pbx.get_group(group.id).name == "Склад"
    assert pbx.update_group(group.id, {"name": "Склад №2"}).name == "Склад №2"
    pbx.change_group_users(group.id, {"add": ["maria"]})
    assert {m.login for m in pbx.get_group(group.id).users} == {"ivan", "maria"}
    pbx.delete_group(group.id)
    with pytest.raises(NotFound):
        pbx.get_group(group.id)


def test_telnums(pbx: Any) -> None:
    assert MAIN in [t.telnum for t in pbx.iter_telnums(page_size=1)]
    assert pbx.list_telnums(limit=1).info.limit == 1
    assert pbx.get_telnum(MAIN).telnum == MAIN
    assert pbx.set_telnum_route(MAIN, {"type": "group", "group": "support", "greeting": False}).telnum == MAIN
    pbx.set_telnum_enabled(MAIN, False)
    assert pbx.get_telnum(MAIN).disabled is True
    pbx.set_telnum_enabled(MAIN, True)
    pbx.set_telnum_route(MAIN, {"type": "scheduler", "greeting": False, "work": {"type": "group", "group": "sales"},
                                "other": {"type": "onduty", "subtype": "user", "user": "ivan"}})
    shift = {"route_name": "Третья смена", "start": 68400, "end": 82800, "days": ["monday"]}
    interval = pbx.add_interval(MAIN, shift)
    assert pbx.update_interval(MAIN, interval.id, {**shift, "days": ["friday"]}).days == ["friday"]
    pbx.delete_interval(MAIN, interval.id)
    day = pbx.add_calendar_day(MAIN, {"route_name": "Праздники", "calendar_predefined": True})
    assert pbx.update_calendar_day(MAIN, day.id, {"route_name": "Праздники", "calendar_predefined": True}).id
    pbx.delete_calendar_day(MAIN, day.id)


def test_sims(pbx: Any) -> None:
    available = pbx.sims_available().items
    assert available
    telnum = available[0].telnum
    assert pbx.add_sim({"telnum": telnum, "user": "admin"}).status == "complete"
    assert pbx.get_sim(telnum).telnum == telnum
    assert telnum in [s.telnum for s in pbx.iter_sims(page_size=1)]
    assert pbx.list_sims(search=telnum).info.total == 1
    pbx.assign_sim_to_company(telnum)
    pbx.assign_sim_to_user(telnum, "ivan")
    pbx.disable_sim(telnum)
    pbx.delete_sim(telnum)
    with pytest.raises(NotFound):
        pbx.get_sim(telnum)


def test_blacklist(pbx: Any) -> None:
    pbx.add_blacklist([{"telnum": "79990000001", "comment": "спам"}])
    assert [b.telnum for b in pbx.list_blacklist()] == ["79990000001"]
    assert pbx.list_blacklist(with_statistics=True)
    pbx.remove_blacklist(["79990000001"])
    assert pbx.list_blacklist() == []
    pbx.set_block_anonymous(True)
    assert pbx.get_block_anonymous() is True
    pbx.set_block_anonymous(False)
    assert pbx.get_block_anonymous() is False


def test_domain_settings(pbx: Any) -> None:
    assert pbx.get_domain().limits.users.used == 10
    assert isinstance(pbx.custom_roles(), list)
    assert pbx.get_music().ringback is not None
    wav = tone_wav(0.2)
    media = pbx.upload_media("holdmusic", "tune.wav", wav, name="Мелодия")
    assert [m.id for m in pbx.media_catalog("holdmusic")] == [media.id]
    pbx.set_music("holdmusic", {"file": media.id})
    pbx.set_music("holdmusic", {"file": "holdmusic"})
    pbx.delete_media("holdmusic", media.id)
    pbx.update_record({"external": True})
    pbx.add_record_exceptions(["ivan"])
    assert [u.login for u in pbx.get_record().users_exception] == ["ivan"]
    pbx.remove_record_exceptions(["ivan"])
    pbx.add_blf_users(["ivan", "maria"])
    assert {u.login for u in pbx.blf_users()} == {"ivan", "maria"}
    pbx.remove_blf_users(["ivan"])
    pbx.update_am({"all": False, "email": "am@example.com"})
    pbx.add_am_users(["ivan"])
    pbx.add_am_groups(["sales"])
    am = pbx.get_am()
    assert am.email == "am@example.com" and [u.login for u in am.users] == ["ivan"]
    pbx.remove_am_users(["ivan"])
    pbx.remove_am_groups(["sales"])
    assert pbx.get_am().groups == []


def test_caller_ids(pbx: Any) -> None:
    assert MAIN in [t.telnum for t in pbx.caller_id_telnums()]
    pbx.set_main_caller_id({"telnum": MAIN})
    pbx.set_user_caller_id({"telnum": MAIN, "login": "admin"})
    pbx.set_group_caller_id({"telnum": MAIN, "id": "sales"})
    pbx.set_region_caller_id({"telnum": MAIN, "id": "2"})
    ids = pbx.get_caller_ids()
    assert ids.main == MAIN and ids.users and ids.groups and ids.regions
    assert pbx.caller_id_regions()
    pbx.delete_user_caller_id("admin")
    pbx.delete_group_caller_id("sales")
    pbx.delete_region_caller_id("2", mode="all")
    ids = pbx.get_caller_ids()
    assert (ids.users, ids.groups, ids.regions) == ([], [], [])


def test_restrictions(pbx: Any) -> None:
    pbx.allow_main(["EURO"])
    pbx.allow_users([{"login": "ivan", "allowed": ["ASIA"]}])
    pbx.allow_groups([{"id": "sales", "allowed": ["AFR"]}])
    r = pbx.get_restrictions()
    assert "EURO" in r.main and r.users[0].allowed == ["ASIA"] and r.groups[0].allowed == ["AFR"]
    pbx.disallow_main(["EURO"])
    pbx.disallow_user("ivan", ["ASIA"])
    pbx.disallow_group("sales", ["AFR"])
    r = pbx.get_restrictions()
    assert "EURO" not in r.main and all(not rule.allowed for rule in [*r.users, *r.groups])


def test_trunks(pbx: Any, other_tenant: Tenant) -> None:
    reg = pbx.create_sip_registration({"telnum": "79262005060", "name": "Тест", "domain": "regtest.com",
                                       "login": "trunk-login", "password": "S3cr3t-Pa55-xyz"})
    assert pbx.get_sip_registration(reg.telnum).name == "Тест"
    assert pbx.update_sip_registration(reg.telnum, {"name": "Новый"}).name == "Новый"
    assert [r.telnum for r in pbx.iter_sip_registrations(page_size=1)] == [reg.telnum]
    assert pbx.list_sip_registrations().info.total == 1
    uri = pbx.create_sipuri_transfer({"telnum": "74951904198"})
    assert pbx.get_sipuri_transfer(uri.telnum).telnum == uri.telnum
    assert pbx.update_sipuri_transfer(uri.telnum, {"active": False}).active is False
    assert [u.telnum for u in pbx.iter_sipuri_transfers()] == [uri.telnum]
    assert pbx.list_sipuri_transfers().info.total == 1
    pbx.delete_sipuri_transfer(uri.telnum)
    pbx.delete_sip_registration(reg.telnum)
    branch = pbx.create_branch({"domain": other_tenant.name, "name": "Филиал", "key": other_tenant.api_key})
    assert pbx.get_branch(branch.domain).name == "Филиал"
    assert pbx.update_branch(branch.domain, {"name": "Склад"}).name == "Склад"
    assert pbx.sync_branch(branch.domain).domain == branch.domain
    assert [b.domain for b in pbx.iter_branches()] == [branch.domain]
    assert pbx.list_branches().info.total == 1
    pbx.delete_branch(branch.domain)
    pbx.create_webhook({"type": "sipregs_error", "url": "https://webhook.test/kit"})
    hooks = pbx.list_webhooks()
    assert [h.url for h in hooks] == ["https://webhook.test/kit"]
    pbx.delete_webhook(hooks[0].id)
    assert pbx.list_webhooks() == []


def test_history_is_streamed_and_legacy_commands(pbx: Any, tenant: Tenant) -> None:
    for n in range(3):
        call = tenant.client.post("/sim/v1/calls", json={"from": f"7916000000{n}", "to": MAIN}).json()
        assert tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"}).status_code == 200
    lines = list(pbx.history_csv(period="today"))
    assert len(lines) == 3 and all(line.count(",") >= 8 for line in lines)
    items = list(pbx.history_json(period="today", type="missed"))
    assert len(items) == 3 and {i["client"] for i in items} == {f"7916000000{n}" for n in range(3)}
    assert len(list(pbx.history_json(limit=1))) == 1
    assert list(pbx.inner_history_csv()) == [] and list(pbx.inner_history_json(period="today")) == []
    assert list(pbx.legacy_history(period="today")) == lines
    # the rest of the legacy commands
    assert {a["name"] for a in pbx.legacy_accounts()} >= {"admin", "ivan"}
    assert {g["id"] for g in pbx.legacy_groups()} == {"sales", "support", "hr"}
    assert [g["id"] for g in pbx.legacy_groups(user="ivan")] == ["sales"]
    pbx.legacy_subscribe_on_calls("ivan", False, group="sales")
    assert pbx.legacy_subscription_status("ivan", group="sales") is False
    pbx.legacy_subscribe_on_calls("ivan", True)
    assert pbx.legacy_subscription_status("ivan") is True
    pbx.legacy_set_dnd("ivan", True)
    assert pbx.legacy_get_dnd("ivan") is True
    pbx.legacy_set_dnd("ivan", False)
    assert pbx.legacy_get_dnd("ivan") is False


def test_legacy_errors(server: ServerThread, tenant: Tenant) -> None:
    with Client(server.url, legacy_token="wrong") as bad, pytest.raises(InvalidToken) as err:
        bad.legacy_accounts()
    assert err.value.message == "Invalid token"
    with Client(server.url, legacy_token=tenant.legacy_token) as ok, pytest.raises(ValidationError) as invalid:
        ok.legacy_get_dnd("nobody")
    assert invalid.value.message == "Invalid parameters"


def test_async_client(server: ServerThread, tenant: Tenant) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, tenant.api_key, legacy_token=tenant.legacy_token) as pbx:
            logins = [u.login async for u in pbx.iter_users(page_size=4)]
            assert len(logins) == 10
            user = await pbx.create_user({"name": "Асинхронный", "login": "async"})
            assert (await pbx.get_user(user.login)).name == "Асинхронный"
            await pbx.set_dnd("async", True)
            assert await pbx.get_dnd("async") is True
            assert [line async for line in pbx.history_csv(limit=5)] == []
            assert [item async for item in pbx.history_json()] == []
            assert len(await pbx.legacy_accounts()) == 11
            with pytest.raises(NotFound):
                await pbx.delete_user("nobody")
            await pbx.delete_user("async")

    asyncio.run(main())


def test_make_call(pbx: Any, tenant: Tenant) -> None:
    """Click-to-call (002 §5.1) and legacy makeCall: the PBX places the call and answers its id."""
    placed = pbx.make_call("+79101234567", user="admin", clid=MAIN, show_phone=True)
    assert placed.clid == MAIN and tenant.client.get(f"/sim/v1/calls/{placed.callid}").json()["to"] == "79101234567"
    by_group = pbx.make_call("79101234567", group="hr")
    assert tenant.client.get(f"/sim/v1/calls/{by_group.callid}").json()["from"] == "hr"
    with pytest.raises(ValidationError):
        pbx.make_call("79101234567", user="nobody")
    callid = pbx.legacy_make_call("707", "+79101234567")
    assert tenant.client.get(f"/sim/v1/calls/{callid}").json()["kind"] == "outgoing"
    # the vpbx extension: which numbers and departments ask the client for a score
    assert pbx.set_rating(telnums=[MAIN], groups=["sales"]).groups == ["sales"]
    assert pbx.set_rating(groups=[]).model_dump() == {"telnums": [MAIN], "groups": []}
    assert pbx.get_rating().telnums == [MAIN]


def test_every_operation_is_exercised() -> None:
    public = {name for name, _ in inspect.getmembers(Client, inspect.isfunction)
              if not name.startswith("_") and name not in ("request", "close")}
    assert public - called_in_this_module() == set()


# --- retries (a scripted transport) --------------------------------------------------------------

def scripted(statuses: list[int], seen: list[str], retry_after: str | None = None) -> httpx.MockTransport:
    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        status = statuses.pop(0) if statuses else 200
        headers = {"Retry-After": retry_after} if retry_after and status == 429 else {}
        if status == 200:
            return httpx.Response(200, json={"state": True})
        return httpx.Response(status, json={"message": "busy"}, headers=headers)

    return httpx.MockTransport(reply)


def test_retries_on_429_and_5xx_then_succeeds() -> None:
    seen: list[str] = []
    with Client("http://pbx", "k", transport=scripted([429, 503, 502], seen, "0"), backoff=0.001) as pbx:
        assert pbx.get_dnd("ivan") is True
    assert seen == ["GET"] * 4


def test_retries_are_bounded_and_post_is_not_retried_on_5xx() -> None:
    seen: list[str] = []
    with Client("http://pbx", "k", transport=scripted([503] * 10, seen), retries=2, backoff=0.001) as pbx:
        with pytest.raises(ServerError) as err:
            pbx.get_dnd("ivan")
        assert err.value.status == 503 and len(seen) == 3
        seen.clear()
        with pytest.raises(ServerError):
            pbx.set_dnd("ivan", True)
        assert seen == ["POST"]
        seen.clear()


def test_retry_after_is_capped() -> None:
    from vpbx.client._base import retry_delay

    assert retry_delay(0, 0.5, 8.0, httpx.Response(429, headers={"Retry-After": "3600"})) == 8.0
    assert retry_delay(0, 0.5, 8.0, httpx.Response(429, headers={"Retry-After": "2"})) == 2.0
    assert all(retry_delay(n, 0.5, 8.0, None) <= 8.0 for n in range(20))


def test_json_array_items_are_taken_out_chunk_by_chunk() -> None:
    from vpbx.client._base import JsonArrayItems

    text = '[{"a": "x,]}"}, {"b": [1, 2]} ,{"c": {"d": null}}]'
    parser = JsonArrayItems()
    got = [item for i in range(len(text)) for item in parser.feed(text[i])]
    parser.close()
    assert got == [{"a": "x,]}"}, {"b": [1, 2]}, {"c": {"d": None}}]
    assert list(JsonArrayItems().feed("[]")) == []
