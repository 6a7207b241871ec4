"""Incoming external and internal calls on the virtual clock, through the simulator API, with a real
loopback CRM receiver asserting the exact requests it got, and the history the calls leave behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from vpbx.schemas.blacklist import BlacklistIn
from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.services import blacklist, numbers, tenancy
from vpbx.testing.server import ServerThread, Tenant, free_port

NUMBER = "74951234567"
CLIENT = "79101234567"


class Crm:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.got: list[dict[str, str]] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = dict(parse_qsl((await request.read()).decode()))
        self.got.append(body)
        if body.get("cmd") == "contact":
            return web.json_response({"contact_name": "ООО Ромашка"})
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/crm", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def wait_for(self, cmd: str, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for r in self.got if r.get("cmd") == cmd) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"CRM got {self.got}")

    def events(self) -> list[tuple[str, str]]:
        return [(r["type"], r["user"]) for r in self.got if r.get("cmd") == "event"]


@pytest.fixture
def setup(vserver: ServerThread, vtenant: Tenant) -> Iterator[tuple[Tenant, Crm]]:
    crm = Crm(vserver)
    vserver.call(crm.start())

    async def work() -> None:
        async with vserver.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, vtenant.name)
            await tenancy.set_integration(s, domain, crm_url=f"http://127.0.0.1:{crm.port}/crm", crm_token="tok")
            if await numbers.repo.find_telnum(s, domain.id, NUMBER) is None:  # the demo company may have it
                await numbers.provision(s, domain, NUMBER, vserver.runtime.clock.now(), name="Основной", main=True)
            await numbers.set_route(s, domain.id, NUMBER, TelnumRouteIn(type="group", group="sales", greeting=False))
            await s.commit()

    vserver.call(work())
    for login in ("admin", "manager", "ivan", "maria", "sergey", "anna", "user1", "elena", "director"):
        assert vtenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    yield vtenant, crm
    vserver.call(crm.stop())


def advance(t: Tenant, seconds: float) -> None:
    r = t.client.post("/sim/v1/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text


def dial(t: Tenant, frm: str = CLIENT, to: str = NUMBER) -> dict[str, Any]:
    r = t.client.post("/sim/v1/calls", json={"from": frm, "to": to})
    assert r.status_code == 201, r.text
    return dict(r.json())


def history(t: Tenant, callid: str) -> dict[str, Any]:
    rows = [c for c in t.client.get("/crmapi/v1/history/json", params={"period": "this_month",
                                                                       "processMissed": "1"}).json()
            if c["uid"] == callid]
    assert len(rows) == 1
    return rows[0]


def test_byorder_answered_call(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    call = dial(t)
    callid = call["callid"]
    assert call["caller_name"] == "ООО Ромашка"
    assert [(leg["party"], leg["state"], leg["caller_name"]) for leg in call["legs"]] == [
        ("admin", "ringing", "ООО Ромашка")]
    advance(t, 10)  # call_duration 10: the next member in list order
    legs = t.client.get(f"/sim/v1/calls/{callid}").json()["legs"]
    assert [leg["party"] for leg in legs] == ["manager"]
    r = t.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "manager"})
    assert r.status_code == 200 and r.json()["state"] == "talking"
    assert t.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"}).status_code == 409
    advance(t, 60)
    r = t.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})
    assert r.json()["state"] == "ended" and r.json()["status"] == "Success"
    crm.wait_for("history")
    assert crm.got[0] == {"cmd": "contact", "crm_token": "tok", "phone": CLIENT, "callid": callid,
                          "diversion": NUMBER}
    assert crm.events() == [("INCOMING", "admin"), ("CANCELLED", "admin"), ("INCOMING", "manager"),
                            ("ACCEPTED", "manager"), ("COMPLETED", "manager")]
    incoming = next(r for r in crm.got if r.get("type") == "INCOMING")
    assert incoming == {"cmd": "event", "crm_token": "tok", "type": "INCOMING", "callid": callid, "phone": CLIENT,
                        "user": "admin", "direction": "in", "diversion": NUMBER, "groupRealName": "Отдел продаж",
                        "ext": "701", "telnum_name": "Основной"}
    hist = next(r for r in crm.got if r["cmd"] == "history")
    assert hist["link"].startswith(f"{t_server(t).url}/records/")  # recording is on by default (12.5)
    assert {k: v for k, v in hist.items() if k not in ("start", "link")} == {
        "cmd": "history", "crm_token": "tok", "type": "in", "user": "manager", "phone": CLIENT, "duration": "70",
        "callid": callid, "status": "Success", "diversion": NUMBER, "ext": "704", "groupRealName": "Отдел продаж",
        "telnum_name": "Основной", "wait": "10", "group": "sales"}
    row = history(t, callid)
    assert (row["status"], row["destination"], row["user"], row["user_name"], row["group_name"], row["wait"],
            row["duration"], row["diversion"], row["telnum_name"]) == (
        "success", "user", "manager", "Ольга Смирнова", "Отдел продаж", 10, 60, NUMBER, "Основной")
    assert "missedStatus" not in row


def test_nobody_available_goes_to_voicemail_then_callback_settles(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    for login in ("admin", "manager", "maria"):
        t.client.put(f"/sim/v1/devices/{login}", json={"registered": False})
    # ivan has a mobile redirect, so he is available even unregistered: DND takes him out
    assert t.client.post("/crmapi/v1/users/ivan/dnd").status_code == 204
    client = "79990001122"
    call = dial(t, frm=client)
    assert call["legs"] == [] and call["state"] == "ringing"
    advance(t, 120)  # sales' timeout: voicemail
    assert t.client.get(f"/sim/v1/calls/{call['callid']}").json()["state"] == "voicemail"
    t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})
    crm.wait_for("history")
    hist = next(r for r in crm.got if r["cmd"] == "history")
    # the push's duration: the whole call (120 s waiting)
    assert (hist["status"], hist["user"], hist["missedStatus"], hist["duration"]) == ("Missed", "pbx", "3", "120")
    assert crm.events() == []
    row = history(t, call["callid"])
    assert (row["status"], row["destination"], row["user"], row["missedStatus"]) == ("missed", "vm", "", 3)
    csv = t.client.get("/crmapi/v1/history/csv", params={"period": "this_month", "client": client}).text
    assert csv.split(",")[1:4] == ["missed", client, f"sales@{t.name}"]
    # the client calls again and is answered: the missed call becomes "client called back"
    t.client.put("/sim/v1/devices/maria", json={"registered": True, "auto": {"action": "answer", "after": 2,
                                                                             "talk": 30}})
    again = dial(t, frm=client)
    advance(t, 40)
    assert t.client.get(f"/sim/v1/calls/{again['callid']}").json()["status"] == "Success"
    assert history(t, call["callid"])["missedStatus"] == 1
    assert history(t, again["callid"])["user"] == "maria"


def test_client_hangs_up_while_ringing(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    call = dial(t)
    advance(t, 3)
    t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})
    crm.wait_for("history")
    hist = next(r for r in crm.got if r["cmd"] == "history")
    assert (hist["status"], hist["user"], hist["wait"]) == ("Missed", "admin", "3")  # issue 13: never Cancel
    assert crm.events() == [("INCOMING", "admin"), ("CANCELLED", "admin")]
    assert history(t, call["callid"])["status"] == "missed"


def test_evenly_starts_after_previous_answerer(setup: tuple[Tenant, Crm]) -> None:
    t, _ = setup

    async def route_support() -> None:
        async with t_server(t).runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            await numbers.set_route(s, domain.id, NUMBER, TelnumRouteIn(type="group", group="support", greeting=False))
            await s.commit()

    t_server(t).call(route_support())
    first = dial(t)
    assert [leg["party"] for leg in first["legs"]] == ["sergey"]
    advance(t, 10)
    t.client.post(f"/sim/v1/calls/{first['callid']}/answer", json={"user": "anna"})
    t.client.post(f"/sim/v1/calls/{first['callid']}/hangup", json={"by": "anna"})
    second = dial(t)
    assert [leg["party"] for leg in second["legs"]] == ["user1"]
    t.client.post(f"/sim/v1/calls/{second['callid']}/hangup", json={"by": "client"})


def test_refused_calls_leave_no_history(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    r = dial(t, to="74990000000")
    assert (r["state"], r["reason"]) == ("refused", "unknown number")
    server = t_server(t)

    async def block() -> None:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            await blacklist.add(s, domain.id, [BlacklistIn(telnum="7910*")], server.runtime.clock.now())
            await s.commit()

    server.call(block())
    r = dial(t)
    assert (r["state"], r["reason"]) == ("refused", "blacklisted")
    assert t.client.get("/sim/v1/calls").json() == []
    time.sleep(0.3)
    assert crm.got == []
    assert t.client.get("/crmapi/v1/history/json", params={"period": "this_month"}).json() == []


def test_internal_calls(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    call = dial(t, frm="user:admin", to="user:704")
    assert call["kind"] == "internal" and [leg["party"] for leg in call["legs"]] == ["admin", "manager"]
    advance(t, 4)
    t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "manager"})
    advance(t, 25)
    t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "admin"})
    missed = dial(t, frm="user:manager", to="user:admin")
    advance(t, 60)
    rows = t.client.get("/crmapi/v1/history/inner/json", params={"period": "this_month"}).json()
    by_uid = {r["uid"]: r for r in rows}
    ok = by_uid[call["callid"]]
    assert (ok["status"], ok["from"], ok["to"], ok["to_name"], ok["wait"], ok["duration"]) == (
        "success", "admin", "manager", "Ольга Смирнова", 4, 25)
    assert by_uid[missed["callid"]]["status"] == "noanswer"
    time.sleep(0.3)
    assert crm.got == []


def test_clock(setup: tuple[Tenant, Crm]) -> None:
    t, _ = setup
    before = t.client.get("/sim/v1/clock").json()["now"]
    after = t.client.post("/sim/v1/clock/advance", json={"seconds": 3600}).json()["now"]
    assert after > before


def t_server(t: Tenant) -> ServerThread:
    server = t.extra.get("server")
    assert isinstance(server, ServerThread)
    return server


@pytest.fixture(autouse=True)
def _server_on_tenant(vserver: ServerThread, vtenant: Tenant) -> None:
    vtenant.extra["server"] = vserver
