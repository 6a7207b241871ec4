"""Call-flows rules on the virtual clock, each asserting the exact requests the loopback CRM got:
greetings, IVR menus, forwarding to outside numbers, department timeouts and msg_busy, rejections,
automatic answers, blind transfers, who can take calls, the clock on the real clock, and admission."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.engine.test_incoming import CLIENT, NUMBER, Crm, advance, dial, history

from vpbx.schemas.numbers import IvrMenuIn, MenuButtonIn, TargetIn, TelnumRouteIn
from vpbx.services import numbers, tenancy
from vpbx.settings import Settings
from vpbx.store.tables import Domain, User
from vpbx.testing.server import ServerThread, Tenant, create_tenant

ADMIN_NUMBER = "74957654321"  # demo: straight to admin, with a greeting
IVR_NUMBER = "78121234567"  # demo: "Главное меню" (1 sales, 2 support, 0 admin, timeout sales), with a greeting
OUTSIDE = "79031112233"
ALL_DAYS = {d: {"start": 0, "end": 86400, "holiday": False}
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
STAFF = ("admin", "manager", "ivan", "maria", "sergey", "anna", "user1", "elena", "director")


class Env:
    def __init__(self, server: ServerThread, tenant: Tenant, crm: Crm) -> None:
        self.server, self.t, self.crm = server, tenant, crm

    @property
    def c(self) -> Any:
        return self.t.client

    def db(self, work: Callable[[AsyncSession, Domain], Awaitable[None]]) -> None:
        async def run() -> None:
            async with self.server.runtime.sessions() as s:
                await work(s, await tenancy.get_domain(s, self.t.name))
                await s.commit()

        self.server.call(run())

    def route(self, telnum: str, body: TelnumRouteIn) -> None:
        async def work(s: AsyncSession, d: Domain) -> None:
            await numbers.set_route(s, d.id, telnum, body)

        self.db(work)

    def user(self, login: str, **values: Any) -> None:
        async def work(s: AsyncSession, d: Domain) -> None:
            await s.execute(update(User).where(User.domain_id == d.id, User.login == login).values(**values))

        self.db(work)

    def call(self, callid: str) -> dict[str, Any]:
        r = self.c.get(f"/sim/v1/calls/{callid}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def act(self, callid: str, what: str, **body: Any) -> dict[str, Any]:
        r = self.c.post(f"/sim/v1/calls/{callid}/{what}", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ringing(self, callid: str) -> list[str]:
        return [leg["party"] for leg in self.call(callid)["legs"] if leg["state"] == "ringing"]

    def hist(self) -> dict[str, str]:
        """The one history request, without ``start`` (the clock's) and ``link`` (checked apart)."""
        self.crm.wait_for("history")
        rows = [r for r in self.crm.got if r["cmd"] == "history"]
        assert len(rows) == 1, rows
        return {k: v for k, v in rows[0].items() if k not in ("start", "link", "crm_token")}

    def sent(self) -> list[str]:
        """Every request the CRM got, once the history came (a call's requests arrive in order). For one call
        only: requests of different calls may arrive interleaved in any order (see ``sent_by_call``)."""
        self.crm.wait_for("history")
        return [label(r) for r in self.crm.got]

    def histories_of(self, *callids: str, timeout: float = 10) -> dict[str, dict[str, str]]:
        """Each call's history request, once every one of them came (in whatever order across calls)."""
        deadline = time.monotonic() + timeout
        while True:
            got = {r["callid"]: r for r in list(self.crm.got) if r["cmd"] == "history" and r["callid"] in callids}
            if len(got) == len(set(callids)):
                return {c: got[c] for c in callids}  # in the order asked
            if time.monotonic() > deadline:
                raise AssertionError(f"no history for {set(callids) - set(got)}; CRM got {self.crm.got}")
            time.sleep(0.05)

    def sent_by_call(self, *callids: str) -> dict[str, list[str]]:
        """Each call's requests in the order the CRM got them, once each call's history came: only the order
        within a call is promised, not across calls."""
        self.histories_of(*callids)
        return {c: [label(r) for r in self.crm.got if r.get("callid") == c] for c in callids}


def label(r: dict[str, str]) -> str:
    return r["cmd"] if r["cmd"] != "event" else f"{r['type']}:{r['user']}"


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    yield from make_env(vserver, vtenant)


def make_env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    """A tenant whose CRM is a loopback receiver, with every demo employee's device registered."""
    crm = Crm(vserver)
    vserver.call(crm.start())
    e = Env(vserver, vtenant, crm)

    async def work(s: AsyncSession, d: Domain) -> None:
        await tenancy.set_integration(s, d, crm_url=f"http://127.0.0.1:{crm.port}/crm", crm_token="tok")

    e.db(work)
    for login in STAFF:
        assert e.c.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    yield e
    vserver.call(crm.stop())


def contact(callid: str, number: str = NUMBER, phone: str = CLIENT) -> dict[str, str]:
    return {"cmd": "contact", "crm_token": "tok", "phone": phone, "callid": callid, "diversion": number}


# --- greeting ------------------------------------------------------------------------------------

def test_client_hangs_up_on_the_greeting(env: Env) -> None:
    call = dial(env.t, to=ADMIN_NUMBER)
    assert call["state"] == "greeting" and call["legs"] == []
    advance(env.t, 3)
    env.act(call["callid"], "hangup", by="client")
    assert env.hist() == {"cmd": "history", "type": "in", "user": "pbx", "phone": CLIENT, "diversion": ADMIN_NUMBER,
                          "duration": "3", "callid": call["callid"], "status": "Missed", "telnum_name": "Администратор",
                          "wait": "3", "missedStatus": "3"}
    assert env.crm.got[0] == contact(call["callid"], ADMIN_NUMBER)
    assert env.sent() == ["contact", "history"]
    row = history(env.t, call["callid"])
    assert (row["status"], row["destination"], row["user"], row["wait"]) == ("missed", "hello", "", 3)


def test_greeting_then_the_employee(env: Env) -> None:
    call = dial(env.t, to=ADMIN_NUMBER)
    advance(env.t, 5)  # the greeting's length
    assert env.ringing(call["callid"]) == ["admin"]


# --- IVR -----------------------------------------------------------------------------------------

def test_ivr_digit_picks_its_button(env: Env) -> None:
    call = dial(env.t, to=IVR_NUMBER)
    callid = call["callid"]
    env.act(callid, "dtmf", digits="0")  # keys during the greeting do nothing
    assert env.call(callid)["state"] == "greeting"
    advance(env.t, 5)
    assert env.call(callid)["state"] == "ivr"
    env.act(callid, "dtmf", digits="9")  # no such button: the menu keeps waiting
    assert env.call(callid)["state"] == "ivr"
    env.act(callid, "dtmf", digits="0")
    assert env.ringing(callid) == ["admin"]
    env.act(callid, "answer", user="admin")
    advance(env.t, 20)
    env.act(callid, "hangup", by="admin")
    assert env.sent() == ["contact", "INCOMING:admin", "ACCEPTED:admin", "COMPLETED:admin", "history"]
    assert env.hist() == {"cmd": "history", "type": "in", "user": "admin", "phone": CLIENT, "diversion": IVR_NUMBER,
                          "duration": "25", "callid": callid, "status": "Success", "ext": "701",
                          "telnum_name": "Санкт-Петербург", "wait": "5"}
    assert history(env.t, callid)["destination"] == "user"


def test_ivr_no_digit_picks_timeout(env: Env) -> None:
    call = dial(env.t, to=IVR_NUMBER)
    advance(env.t, 5 + 10)  # greeting, then the menu's wait
    assert env.call(call["callid"])["group"] == "sales"
    assert env.ringing(call["callid"]) == ["admin"]
    env.act(call["callid"], "hangup", by="client")
    assert env.sent() == ["contact", "INCOMING:admin", "CANCELLED:admin", "history"]
    assert env.hist()["status"] == "Missed"  # issue 13: an incoming call is never Cancel


def test_ivr_without_timeout_button_ends_missed(env: Env) -> None:
    env.route(NUMBER, TelnumRouteIn(type="ivr", greeting=False, ivr=IvrMenuIn(name="Короткое", items=[
        MenuButtonIn(button="1", type="user", user="admin")])))
    call = dial(env.t)
    assert env.call(call["callid"])["state"] == "ivr"
    advance(env.t, 10)
    h = env.hist()
    assert (h["status"], h["user"]) == ("Missed", "pbx")
    assert history(env.t, call["callid"])["destination"] == "ivr"


def test_nested_menu_and_a_button_to_an_outside_number(env: Env) -> None:
    env.route(NUMBER, TelnumRouteIn(type="ivr", greeting=False, ivr=IvrMenuIn(name="Вложенное", items=[
        MenuButtonIn(button="5", type="telnum", telnum=OUTSIDE)])))
    env.route(NUMBER, TelnumRouteIn(type="ivr", greeting=False, ivr=IvrMenuIn(name="Верхнее", items=[
        MenuButtonIn(button="1", type="group", group="sales"),
        MenuButtonIn(button="3", type="ivr", ivr="Вложенное")])))
    assert env.c.put(f"/sim/v1/externals/{OUTSIDE}",
                     json={"auto": {"action": "answer", "after": 2, "talk": 20}}).status_code == 200
    call = dial(env.t)
    callid = call["callid"]
    env.act(callid, "dtmf", digits="3")
    assert env.call(callid)["state"] == "ivr"  # the nested menu
    env.act(callid, "dtmf", digits="5")
    assert env.ringing(callid) == [f"ext:{OUTSIDE}"]
    advance(env.t, 2)
    assert env.call(callid)["state"] == "talking"
    advance(env.t, 20)  # the outside party hangs up
    assert env.call(callid)["status"] == "Success"
    assert env.sent() == ["contact", "history"]  # no employee: no events
    assert env.hist() == {"cmd": "history", "type": "in", "user": "pbx", "phone": CLIENT, "diversion": NUMBER,
                          "duration": "22", "callid": callid, "status": "Success", "telnum_name": "Основной",
                          "wait": "2"}
    row = history(env.t, callid)
    assert (row["status"], row["destination"], row["user"], row["duration"]) == ("success", "telnum", "", 20)


# --- forwarding to an outside number ---------------------------------------------------------------

@pytest.mark.parametrize("action", ["busy", "unavailable", "notfound"])
def test_forward_to_an_outside_number_that_fails(env: Env, action: str) -> None:
    env.route(NUMBER, TelnumRouteIn(type="scheduler", greeting=False, schedule=ALL_DAYS,
                                    work=TargetIn(type="telnum", telnum=OUTSIDE)))
    env.c.put(f"/sim/v1/externals/{OUTSIDE}", json={"auto": {"action": action, "after": 4}})
    call = dial(env.t)
    assert env.ringing(call["callid"]) == [f"ext:{OUTSIDE}"]
    advance(env.t, 4)
    assert env.call(call["callid"])["status"] == "Missed"
    assert env.sent() == ["contact", "history"]
    h = env.hist()
    assert (h["status"], h["user"], h["wait"], h["duration"]) == ("Missed", "pbx", "4", "4")
    assert history(env.t, call["callid"])["destination"] == "telnum"


def test_forward_to_an_outside_number_that_answers_by_default(env: Env) -> None:
    env.route(NUMBER, TelnumRouteIn(type="scheduler", greeting=False, schedule=ALL_DAYS,
                                    work=TargetIn(type="telnum", telnum="79037776655")))
    call = dial(env.t)
    advance(env.t, 3)  # the default outside number: answers after 3 s, talks 30 s
    assert env.call(call["callid"])["state"] == "talking"
    advance(env.t, 30)
    h = env.hist()
    assert (h["status"], h["user"], h["wait"], h["duration"]) == ("Success", "pbx", "3", "33")


# --- departments ---------------------------------------------------------------------------------

def test_msg_busy_when_no_member_is_free(env: Env) -> None:
    assert env.c.put("/crmapi/v1/groups/sales", json={"advanced": "msg_busy"}).status_code == 200
    for login in ("admin", "manager", "ivan", "maria"):
        env.c.put(f"/sim/v1/devices/{login}", json={"registered": False})
    env.user("ivan", mobile_redirect_enabled=False)
    call = dial(env.t)
    view = env.call(call["callid"])
    assert (view["state"], view["legs"], view["announcements"]) == ("message", [], ["msg_busy"])
    advance(env.t, 5)
    assert env.sent() == ["contact", "history"]
    assert env.hist() == {"cmd": "history", "type": "in", "user": "pbx", "phone": CLIENT, "diversion": NUMBER,
                          "duration": "5", "callid": call["callid"], "status": "Missed",
                          "groupRealName": "Отдел продаж", "telnum_name": "Основной", "wait": "5",
                          "missedStatus": "3", "group": "sales"}
    assert history(env.t, call["callid"])["destination"] == "group"


def test_msg_busy_off_rings_nobody_until_the_timeout(env: Env) -> None:
    for login in ("admin", "manager", "ivan", "maria"):
        env.c.put(f"/sim/v1/devices/{login}", json={"registered": False})
    env.user("ivan", mobile_redirect_enabled=False)
    call = dial(env.t)
    assert env.call(call["callid"])["state"] == "ringing"
    advance(env.t, 120)
    assert env.call(call["callid"])["state"] == "voicemail"


SALES_CYCLE = ["INCOMING:admin", "CANCELLED:admin", "INCOMING:manager", "CANCELLED:manager"]


@pytest.mark.parametrize("target", ["voicemail", "user", "group", "telnum", "msg_busy"])
def test_department_timeout_targets(env: Env, target: str) -> None:
    timeout: dict[str, Any] = {"time": 20, "target": target, "user": "director" if target == "user" else None,
                               "group": "hr" if target == "group" else None,
                               "telnum": OUTSIDE if target == "telnum" else None}
    r = env.c.put("/crmapi/v1/groups/sales", json={"timeout": timeout})
    assert r.status_code == 200, r.text
    env.c.put(f"/sim/v1/externals/{OUTSIDE}", json={"auto": {"action": "answer", "after": 5, "talk": 40}})
    call = dial(env.t)
    callid = call["callid"]
    advance(env.t, 20)  # admin 10 s, manager 10 s, then the timeout
    view = env.call(callid)
    if target == "voicemail":
        assert view["state"] == "voicemail"
        advance(env.t, 30)
        env.act(callid, "hangup", by="client")
        assert env.sent() == ["contact", *SALES_CYCLE, "history"]
        h = env.hist()
        # user: the last employee rung (call-flows step 10)
        assert (h["status"], h["user"], h["groupRealName"], h["wait"]) == ("Missed", "manager", "Отдел продаж", "50")
        assert history(env.t, callid)["destination"] == "vm"
    elif target == "user":
        assert env.ringing(callid) == ["director"]
        env.act(callid, "answer", user="director")
        advance(env.t, 15)
        env.act(callid, "hangup", by="client")
        assert env.sent() == ["contact", *SALES_CYCLE, "INCOMING:director", "ACCEPTED:director",
                              "COMPLETED:director", "history"]
        h = env.hist()
        assert (h["status"], h["user"], h["ext"], h["groupRealName"], h["duration"]) == (
            "Success", "director", "703", "Отдел продаж", "35")
    elif target == "group":
        assert sorted(env.ringing(callid)) == ["director", "elena"]  # hr rings ALL
        env.act(callid, "answer", user="elena")
        env.act(callid, "hangup", by="elena")
        sent = env.sent()
        assert sent[:5] == ["contact", *SALES_CYCLE] and sorted(sent[5:7]) == ["INCOMING:director", "INCOMING:elena"]
        assert sent[7:] == ["ACCEPTED:elena", "CANCELLED:director", "COMPLETED:elena", "history"]
        h = env.hist()
        assert (h["status"], h["user"], h["groupRealName"], h["group"]) == ("Success", "elena", "Отдел кадров", "hr")
    elif target == "telnum":
        assert env.ringing(callid) == [f"ext:{OUTSIDE}"]
        advance(env.t, 5 + 40)
        assert env.sent() == ["contact", *SALES_CYCLE, "history"]
        h = env.hist()
        # answered outside: not by the last employee rung
        assert (h["status"], h["user"], h["wait"], h["duration"]) == ("Success", "pbx", "25", "65")
        assert history(env.t, callid)["destination"] == "telnum"
    else:
        assert (view["state"], view["announcements"]) == ("message", ["msg_busy"])
        advance(env.t, 5)
        assert env.sent() == ["contact", *SALES_CYCLE, "history"]
        h = env.hist()
        assert (h["status"], h["user"], h["wait"]) == ("Missed", "manager", "25")
        assert history(env.t, callid)["destination"] == "group"


# --- employees -----------------------------------------------------------------------------------

def test_an_employee_rejects_a_department_call(env: Env) -> None:
    env.route(NUMBER, TelnumRouteIn(type="group", group="hr", greeting=False))
    call = dial(env.t)
    callid = call["callid"]
    assert sorted(env.ringing(callid)) == ["director", "elena"]
    env.act(callid, "reject", user="elena")
    assert env.ringing(callid) == ["director"]
    assert env.c.post(f"/sim/v1/calls/{callid}/reject", json={"user": "elena"}).status_code == 409
    env.act(callid, "answer", user="director")
    env.act(callid, "hangup", by="client")
    sent = env.sent()
    assert sorted(sent[1:3]) == ["INCOMING:director", "INCOMING:elena"]
    assert sent[3:] == ["CANCELLED:elena", "ACCEPTED:director", "COMPLETED:director", "history"]


def test_an_employee_rejects_a_personal_call(env: Env) -> None:
    call = dial(env.t, to=ADMIN_NUMBER)
    advance(env.t, 5)
    env.act(call["callid"], "reject", user="admin")
    assert env.call(call["callid"])["state"] == "voicemail"
    env.act(call["callid"], "hangup", by="client")
    assert env.sent() == ["contact", "INCOMING:admin", "CANCELLED:admin", "history"]
    h = env.hist()
    assert (h["status"], h["user"], h["ext"]) == ("Missed", "admin", "701")
    assert history(env.t, call["callid"])["destination"] == "vm"


def test_device_answers_automatically_then_hangs_up(env: Env) -> None:
    r = env.c.put("/sim/v1/devices/admin", json={"registered": True, "auto": {"action": "answer", "after": 4,
                                                                             "talk": 30}})
    assert r.json() == {"login": "admin", "registered": True, "auto": {"action": "answer", "after": 4, "talk": 30}}
    call = dial(env.t, to=ADMIN_NUMBER)
    advance(env.t, 5 + 4)
    assert env.call(call["callid"])["state"] == "talking"
    advance(env.t, 30)
    assert env.sent() == ["contact", "INCOMING:admin", "ACCEPTED:admin", "COMPLETED:admin", "history"]
    assert env.hist() == {"cmd": "history", "type": "in", "user": "admin", "phone": CLIENT, "diversion": ADMIN_NUMBER,
                          "duration": "39", "callid": call["callid"], "status": "Success", "ext": "701",
                          "telnum_name": "Администратор", "wait": "9"}


def test_device_auto_reject_and_bad_action(env: Env) -> None:
    assert env.c.put("/sim/v1/devices/admin", json={"auto": {"action": "dance"}}).status_code == 400
    assert env.c.put("/sim/v1/devices/nobody", json={"registered": True}).status_code == 404
    env.c.put("/sim/v1/devices/admin", json={"registered": True, "auto": {"action": "reject", "after": 2}})
    call = dial(env.t)
    advance(env.t, 2)
    assert env.ringing(call["callid"]) == []  # admin declined; manager's turn comes at 10 s
    advance(env.t, 8)
    assert env.ringing(call["callid"]) == ["manager"]


def test_blind_transfer(env: Env) -> None:
    """Blind: admin's part ends (its own history); the client goes on as the call ``second_callid``."""
    call = dial(env.t)
    callid = call["callid"]
    env.act(callid, "answer", user="admin")
    advance(env.t, 10)
    r = env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "704", "mode": "blind"})
    assert r.status_code == 200, r.text
    second = r.json()["callid"]
    assert second != callid and r.json()["transferred_from"] == callid
    assert env.ringing(second) == ["manager"]
    assert env.call(callid)["continued_as"] == second and env.call(callid)["status"] == "Success"
    env.act(callid, "answer", user="manager")  # the first part's id still reaches the client's call
    advance(env.t, 20)
    env.act(second, "hangup", by="manager")
    assert env.sent_by_call(callid, second) == {
        callid: ["contact", "INCOMING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "history"],
        second: ["INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager", "history"]}
    transferred = next(r for r in env.crm.got if r.get("type") == "TRANSFERRED")
    assert transferred == {"cmd": "event", "crm_token": "tok", "type": "TRANSFERRED", "callid": callid,
                           "phone": CLIENT, "user": "admin", "direction": "in", "diversion": NUMBER,
                           "groupRealName": "Отдел продаж", "ext": "701", "telnum_name": "Основной",
                           "second_callid": second}
    incoming = next(r for r in env.crm.got if r.get("type") == "INCOMING" and r["callid"] == second)
    assert (incoming["callid"], incoming["user"], incoming["ext"]) == (second, "manager", "704")
    hists = env.histories_of(callid, second)
    first, last = hists[callid], hists[second]
    assert (first["callid"], first["status"], first["user"], first["duration"]) == (callid, "Success", "admin", "10")
    assert (last["callid"], last["status"], last["user"], last["ext"], last["duration"]) == \
        (second, "Success", "manager", "704", "20")
    assert history(env.t, callid)["user"] == "admin"
    assert history(env.t, second)["user"] == "manager"


def test_blind_transfer_to_a_department_and_outside(env: Env) -> None:
    call = dial(env.t)
    callid = call["callid"]
    env.act(callid, "answer", user="admin")
    assert env.c.post(f"/sim/v1/calls/{callid}/transfer",
                      json={"user": "manager", "to": "hr"}).status_code == 409  # manager is not talking
    assert env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "nobody"}).status_code == 404
    assert env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "admin"}).status_code == 409
    second = env.act(callid, "transfer", user="admin", to="706")["callid"]  # hr's extension
    assert sorted(env.ringing(second)) == ["director", "elena"]
    env.act(second, "answer", user="elena")
    third = env.act(second, "transfer", user="elena", to=OUTSIDE)["callid"]
    assert env.ringing(third) == [f"ext:{OUTSIDE}"]
    advance(env.t, 3 + 30)  # the outside number's default
    sent = env.sent_by_call(callid, second, third)
    assert sent[second][-2:] == ["TRANSFERRED:elena", "history"] and sent[third] == ["history"]
    hists = env.histories_of(callid, second, third)
    assert [(h["callid"], h["status"], h["user"], h.get("groupRealName")) for h in hists.values()] == [
        (callid, "Success", "admin", "Отдел продаж"), (second, "Success", "elena", "Отдел кадров"),
        (third, "Success", "pbx", None)]
    assert history(env.t, third)["destination"] == "telnum"


def test_blind_transfer_nobody_answers(env: Env) -> None:
    """The target does not answer: the second part goes to the target's voicemail, Missed, but it is no missed
    call to return (the client was served): no missedStatus."""
    call = dial(env.t)
    env.act(call["callid"], "answer", user="admin")
    second = env.act(call["callid"], "transfer", user="admin", to="manager")["callid"]
    advance(env.t, 60 + 60)
    last = env.histories_of(call["callid"], second)[second]
    assert (last["callid"], last["status"], last["user"]) == (second, "Missed", "manager")
    assert "missedStatus" not in last
    assert history(env.t, second)["destination"] == "vm"


def test_dnd_absent_and_unregistered_employees_are_skipped(env: Env) -> None:
    assert env.c.post("/crmapi/v1/users/admin/dnd").status_code == 204
    env.user("manager", absent=True)
    env.c.put("/sim/v1/devices/ivan", json={"registered": False})
    env.user("ivan", mobile_redirect_enabled=False)
    call = dial(env.t)
    callid = call["callid"]
    assert env.ringing(callid) == ["maria"]
    advance(env.t, 10)
    assert env.ringing(callid) == ["maria"]  # the only one who can take it keeps ringing
    assert env.c.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"}).status_code == 409
    env.act(callid, "hangup", by="client")
    assert env.sent() == ["contact", "INCOMING:maria", "CANCELLED:maria", "history"]


def test_calls_disabled_in_the_department_skip_the_member(env: Env) -> None:
    r = env.c.post("/crmapi/v1/users/admin/subscription", params={"group_id": "sales"})
    assert r.status_code == 204
    r = env.c.delete("/crmapi/v1/users/admin/subscription", params={"group_id": "sales"})
    assert r.status_code == 204
    call = dial(env.t)
    assert env.ringing(call["callid"]) == ["manager"]


def test_an_employee_on_a_call_is_not_rung_again(env: Env) -> None:
    first = dial(env.t)
    env.act(first["callid"], "answer", user="admin")
    second = dial(env.t, frm="79995554433")
    assert env.ringing(second["callid"]) == ["manager"]


# --- admission -----------------------------------------------------------------------------------

def test_anonymous_blocked_and_blacklist_statistics(env: Env) -> None:
    assert env.c.post("/crmapi/v1/blacklist/block-anonymous").status_code == 204
    assert env.c.post("/crmapi/v1/blacklist/telnums", json=[{"telnum": CLIENT, "comment": "spam"},
                                                            {"telnum": "7999*"}]).status_code == 204
    for frm in ("anonymous", CLIENT, CLIENT, "79990000001"):
        r = dial(env.t, frm=frm)
        assert (r["state"], r["reason"]) == ("refused", "blacklisted")
    assert env.c.get("/sim/v1/calls").json() == []
    stats = env.c.get("/crmapi/v1/blacklist/telnums", params={"with": "statistics"}).json()
    assert stats == [{"telnum": CLIENT, "comment": "spam", "week": 2, "year": 2},
                     {"telnum": "7999*", "comment": "", "week": 1, "year": 1}]
    assert env.c.delete("/crmapi/v1/blacklist/block-anonymous").status_code == 204
    r = dial(env.t, frm="anonymous")
    assert r["state"] == "ringing"
    env.act(r["callid"], "hangup", by="client")
    assert env.sent() == ["contact", "INCOMING:admin", "CANCELLED:admin", "history"]
    assert env.crm.got[0]["phone"] == "anonymous"


def test_disabled_number_is_refused(env: Env) -> None:
    assert env.c.delete(f"/crmapi/v1/telnums/{NUMBER}/enabled").status_code == 204
    r = dial(env.t)
    assert (r["state"], r["reason"]) == ("refused", "number disabled")
    time.sleep(0.2)
    assert env.crm.got == []


# --- the clock -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("real-clock")
    srv = ServerThread(Settings(db=f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}", home=tmp, demo=False, port=0)).start()
    yield srv
    srv.stop()


def test_clock_answers_409_on_the_real_clock(real_clock_server: ServerThread) -> None:
    t = create_tenant(real_clock_server)
    try:
        r = t.client.get("/sim/v1/clock")
        assert (r.status_code, r.json()) == (409, {"message": "The server runs on the real clock"})
        r = t.client.post("/sim/v1/clock/advance", json={"seconds": 5})
        assert r.status_code == 409
        assert t.client.get("/sim/v1/clock", headers={"X-API-KEY": "wrong"}).status_code == 401
    finally:
        t.client.close()
