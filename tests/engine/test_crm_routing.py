"""Call-flows step 2 (transfer to the CRM's ``responsible``, 9.1 ``crm``), the mobile leg of the mobile
redirect (002 §7), and the department's ``queue_position`` announcement, with the loopback CRM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.engine.test_incoming import CLIENT, NUMBER, Crm, advance, dial
from tests.engine.test_rules import STAFF, Env

from vpbx.services import tenancy
from vpbx.store.tables import Domain, Telnum
from vpbx.testing.server import ServerThread, Tenant

MOBILE = "79261904198"  # user1's mobile in the demo company


class ScriptedCrm(Crm):
    """Answers ``contact`` with ``answer`` (a dict, or raw text), after ``delay`` seconds."""

    def __init__(self, server: ServerThread) -> None:
        super().__init__(server)
        self.answer: Any = {"contact_name": "ООО Ромашка"}
        self.delay = 0.0

    async def _handle(self, request: web.Request) -> web.Response:
        from urllib.parse import parse_qsl

        body = dict(parse_qsl((await request.read()).decode()))
        self.got.append(body)
        if body.get("cmd") == "contact":
            if self.delay:
                await asyncio.sleep(self.delay)
            if isinstance(self.answer, str):
                return web.Response(text=self.answer, content_type="application/json")
            return web.json_response(self.answer)
        return web.json_response({})


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[tuple[Env, ScriptedCrm]]:
    crm = ScriptedCrm(vserver)
    vserver.call(crm.start())
    e = Env(vserver, vtenant, crm)

    async def work(s: AsyncSession, d: Domain) -> None:
        await tenancy.set_integration(s, d, crm_url=f"http://127.0.0.1:{crm.port}/crm", crm_token="tok",
                                      lookup_timeout=0.5)

    e.db(work)
    for login in STAFF:
        assert e.c.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    yield e, crm
    vserver.call(crm.stop())


def crm_option(e: Env, value: str, telnum: str = NUMBER) -> None:
    async def work(s: AsyncSession, d: Domain) -> None:
        await s.execute(update(Telnum).where(Telnum.domain_id == d.id, Telnum.telnum == telnum).values(crm=value))

    e.db(work)
    assert e.c.get(f"/crmapi/v1/telnums/{telnum}").json()["crm"] == value


# --- the CRM's responsible -----------------------------------------------------------------------

def test_the_crm_option_is_set_through_the_route(env: tuple[Env, ScriptedCrm]) -> None:
    """A vpbx extension of 9.3: ``crm`` in the route's body, its fallback checked like the route's targets."""
    e, crm = env
    route = {"type": "group", "group": "sales", "greeting": False}
    for bad in ("user:nobody", "group:nope", "telnum:12", "maybe"):
        r = e.c.post(f"/crmapi/v1/telnums/{NUMBER}", json={**route, "crm": bad})
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["field"] == "crm"
    assert e.c.get(f"/crmapi/v1/telnums/{NUMBER}").json()["crm"] == ""
    r = e.c.post(f"/crmapi/v1/telnums/{NUMBER}", json={**route, "crm": "user:704"})
    assert r.status_code == 200 and r.json()["crm"] == "user:manager"
    assert e.c.post(f"/crmapi/v1/telnums/{NUMBER}", json=route).json()["crm"] == "user:manager"  # kept
    crm.answer = {"responsible": "maria"}
    call = dial(e.t)
    assert e.ringing(call["callid"]) == ["maria"]
    advance(e.t, 20)  # maria does not answer: the fallback
    assert e.ringing(call["callid"]) == ["manager"]
    assert e.c.post(f"/crmapi/v1/telnums/{NUMBER}", json={**route, "crm": ""}).json()["crm"] == ""


def test_responsible_by_extension_rings_first(env: tuple[Env, ScriptedCrm]) -> None:
    e, crm = env
    crm_option(e, "group:hr")
    crm.answer = {"contact_name": "ООО Ромашка", "responsible": "704"}
    call = dial(e.t)
    callid = call["callid"]
    assert call["caller_name"] == "ООО Ромашка"
    assert e.ringing(callid) == ["manager"]
    e.act(callid, "answer", user="manager")
    advance(e.t, 12)
    e.act(callid, "hangup", by="client")
    assert e.sent() == ["contact", "INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager", "history"]
    assert e.hist() == {"cmd": "history", "type": "in", "user": "manager", "phone": CLIENT, "diversion": NUMBER,
                        "duration": "12", "callid": callid, "status": "Success", "ext": "704",
                        "telnum_name": "Основной", "wait": "0"}


def test_responsible_not_answering_goes_to_fallback_then_the_route(env: tuple[Env, ScriptedCrm]) -> None:
    e, crm = env
    crm_option(e, "group:hr")
    assert e.c.put("/crmapi/v1/groups/hr", json={"timeout": {"time": 30, "target": "voicemail"}}).status_code == 200
    crm.answer = {"responsible": "maria"}
    call = dial(e.t)
    callid = call["callid"]
    assert call["caller_name"] is None and e.ringing(callid) == ["maria"]
    advance(e.t, 20)  # the responsible's turn
    assert sorted(e.ringing(callid)) == ["director", "elena"]
    advance(e.t, 30)  # hr's timeout: the number's own route (sales), not hr's voicemail
    assert e.ringing(callid) == ["admin"] and e.call(callid)["group"] == "sales"
    e.act(callid, "answer", user="admin")
    e.act(callid, "hangup", by="admin")
    sent = e.sent()
    assert sent[:3] == ["contact", "INCOMING:maria", "CANCELLED:maria"]
    assert sorted(sent[3:5]) == ["INCOMING:director", "INCOMING:elena"]
    assert sorted(sent[5:7]) == ["CANCELLED:director", "CANCELLED:elena"]
    assert sent[7:] == ["INCOMING:admin", "ACCEPTED:admin", "COMPLETED:admin", "history"]
    h = e.hist()
    assert (h["user"], h["groupRealName"], h["wait"]) == ("admin", "Отдел продаж", "50")


def test_busy_responsible_goes_to_the_fallback_at_once(env: tuple[Env, ScriptedCrm]) -> None:
    e, crm = env
    crm_option(e, "user:director")
    crm.answer = {}
    other = dial(e.t, frm="79995550000")
    advance(e.t, 30)  # sales: admin, manager, ivan, then maria
    e.act(other["callid"], "answer", user="maria")
    crm.answer = {"responsible": "maria"}
    call = dial(e.t)
    assert e.ringing(call["callid"]) == ["director"]


def test_responsible_by_direct_number_and_no_fallback(env: tuple[Env, ScriptedCrm]) -> None:
    e, crm = env
    crm_option(e, "on")
    e.user("sergey", telnum="74950001122")
    crm.answer = {"responsible": "+7 (495) 000-11-22"}
    call = dial(e.t)
    assert e.ringing(call["callid"]) == ["sergey"]
    e.act(call["callid"], "reject", user="sergey")  # busy: no fallback, the number's route
    assert e.ringing(call["callid"]) == ["admin"]


@pytest.mark.parametrize("case", ["option off", "dnd", "unknown", "slow", "malformed", "error"])
def test_the_route_when_responsible_does_not_apply(env: tuple[Env, ScriptedCrm], case: str) -> None:
    e, crm = env
    crm_option(e, "" if case == "option off" else "group:hr")
    crm.answer = {"contact_name": "Клиент", "responsible": "nobody" if case == "unknown" else "maria"}
    if case == "dnd":
        e.c.post("/crmapi/v1/users/maria/dnd")
    elif case == "slow":
        crm.delay = 1.5  # beyond the lookup timeout (0.5 s)
    elif case == "malformed":
        crm.answer = "{not json"
    elif case == "error":
        crm.answer = {"error": "boom"}
    call = dial(e.t)
    assert e.ringing(call["callid"]) == ["admin"]
    expected_name = None if case in ("slow", "malformed", "error") else "Клиент"
    assert call["caller_name"] == expected_name


# --- mobile redirect -----------------------------------------------------------------------------

def route_to_user1(e: Env) -> None:
    from vpbx.schemas.numbers import TelnumRouteIn

    e.route(NUMBER, TelnumRouteIn(type="user", user="user1", greeting=False))


def test_forward_rings_only_the_mobile(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    r = e.c.put("/crmapi/v1/users/user1", json={"mobile_redirect": {"enabled": True, "forward": True, "delay": 5}})
    assert r.status_code == 200, r.text
    e.c.put(f"/sim/v1/externals/{MOBILE}", json={"auto": {"action": "answer", "after": 4, "talk": 20}})
    route_to_user1(e)
    call = dial(e.t)
    legs = e.call(call["callid"])["legs"]
    assert [(leg["party"], leg["owner"], leg["name"]) for leg in legs] == [(f"ext:{MOBILE}", "user1", "Пользователь")]
    advance(e.t, 4 + 20)
    assert e.sent() == ["contact", "INCOMING:user1", "ACCEPTED:user1", "COMPLETED:user1", "history"]
    h = e.hist()
    assert (h["status"], h["user"], h["ext"], h["duration"]) == ("Success", "user1", "702", "24")  # 4 s ringing


def test_devices_then_the_mobile_after_delay(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    e.c.put("/crmapi/v1/users/user1", json={"mobile_redirect": {"enabled": True, "forward": False, "delay": 15}})
    route_to_user1(e)
    call = dial(e.t)
    callid = call["callid"]
    assert e.ringing(callid) == ["user1"]
    advance(e.t, 15)
    assert e.ringing(callid) == ["user1", f"ext:{MOBILE}"]
    advance(e.t, 3)  # the mobile (an outside number's default: answers after 3 s, talks 30 s)
    view = e.call(callid)
    assert [(leg["party"], leg["state"]) for leg in view["legs"]] == [(f"ext:{MOBILE}", "talking")]
    assert view["answered_by"] == "user1"
    e.act(callid, "hangup", by="user1")  # the employee hangs up the mobile leg
    assert e.sent() == ["contact", "INCOMING:user1", "ACCEPTED:user1", "COMPLETED:user1", "history"]
    assert e.hist()["user"] == "user1"


def test_unregistered_device_rings_the_mobile_at_once(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    e.c.put("/sim/v1/devices/user1", json={"registered": False})
    e.c.put(f"/sim/v1/externals/{MOBILE}", json={"auto": {"action": "ignore"}})
    route_to_user1(e)
    call = dial(e.t)
    assert e.ringing(call["callid"]) == [f"ext:{MOBILE}"]
    e.act(call["callid"], "answer", user="user1")  # the simulator answers the mobile for its employee
    assert e.call(call["callid"])["state"] == "talking"
    e.act(call["callid"], "hangup", by="client")
    assert e.sent() == ["contact", "INCOMING:user1", "ACCEPTED:user1", "COMPLETED:user1", "history"]


def test_mobile_declines_then_voicemail(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    e.c.put("/sim/v1/devices/user1", json={"registered": False})
    e.c.put(f"/sim/v1/externals/{MOBILE}", json={"auto": {"action": "busy", "after": 2}})
    route_to_user1(e)
    call = dial(e.t)
    advance(e.t, 2)
    assert e.call(call["callid"])["state"] == "voicemail"
    e.act(call["callid"], "hangup", by="client")
    assert e.sent() == ["contact", "INCOMING:user1", "CANCELLED:user1", "history"]


def test_department_slot_shorter_than_the_delay_never_reaches_the_mobile(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    call = dial(e.t)  # sales BYORDER, 10 s each; ivan's mobile would ring after 15 s
    advance(e.t, 20)
    assert e.ringing(call["callid"]) == ["ivan"]
    advance(e.t, 9)
    assert e.ringing(call["callid"]) == ["ivan"]


# --- queue position ------------------------------------------------------------------------------

def test_queue_position_is_announced(env: tuple[Env, ScriptedCrm]) -> None:
    e, _ = env
    assert e.c.put("/crmapi/v1/groups/sales", json={"queue_position": True}).status_code == 200
    first = dial(e.t)
    second = dial(e.t, frm="79995550001")
    assert (first["queue_position"], first["announcements"]) == (1, ["queue_position:1"])
    assert (second["queue_position"], second["announcements"]) == (2, ["queue_position:2"])
    e.act(first["callid"], "answer", user="admin")
    third = dial(e.t, frm="79995550002")
    assert third["queue_position"] == 2
    assert e.c.put("/crmapi/v1/groups/sales", json={"queue_position": False}).status_code == 200
    assert dial(e.t, frm="79995550003")["queue_position"] is None
