"""Outgoing external calls from an employee's device (call-flows "Outgoing external call"), on the virtual
clock through the simulator, with the loopback CRM asserting every request and the history left behind."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.engine.test_incoming import CLIENT, NUMBER, Crm, _server_on_tenant, advance, dial, history, setup

from vpbx.testing.server import Tenant

__all__ = ["_server_on_tenant", "setup"]  # fixtures, reused

GERMANY = "4930123456789"  # EURO: not in a new domain's company rules (LOCAL, RU, 179)
SPB = "78121234567"
ADMIN_NUMBER = "74957654321"


def external(t: Tenant, phone: str, action: str, after: float = 5, talk: float | None = None) -> None:
    auto: dict[str, Any] = {"action": action, "after": after}
    if talk is not None:
        auto["talk"] = talk
    r = t.client.put(f"/sim/v1/externals/{phone}", json={"auto": auto})
    assert r.status_code == 200, r.text


def set_main(t: Tenant, telnum: str = NUMBER) -> None:
    assert t.client.post("/crmapi/v1/caller-ids/main", json={"telnum": telnum}).status_code == 204


def crm_history(crm: Crm, callid: str, timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in crm.got if r["cmd"] == "history" and r["callid"] == callid]
        if found:
            assert len(found) == 1
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no history for {callid}: {crm.got}")


def out_events(crm: Crm, callid: str) -> list[tuple[str, str, str]]:
    return [(r["type"], r["user"], r["direction"]) for r in crm.got
            if r.get("cmd") == "event" and r["callid"] == callid]


def test_answered_outgoing_call(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    set_main(t)
    external(t, CLIENT, "answer", after=5, talk=40)
    call = dial(t, frm="user:admin", to=f"+{CLIENT}")
    callid = call["callid"]
    assert (call["kind"], call["from"], call["to"], call["state"], call["diversion"]) == (
        "outgoing", "admin", CLIENT, "ringing", NUMBER)
    assert [(leg["party"], leg["state"]) for leg in call["legs"]] == [
        ("admin", "talking"), (f"ext:{CLIENT}", "ringing")]
    advance(t, 5)
    assert t.client.get(f"/sim/v1/calls/{callid}").json()["state"] == "talking"
    advance(t, 40)  # the client hangs up after talking 40 s
    assert t.client.get(f"/sim/v1/calls/{callid}").json()["status"] == "Success"
    hist = crm_history(crm, callid)
    assert hist["link"]  # external calls are recorded by default (12.5)
    assert {k: v for k, v in hist.items() if k not in ("start", "link")} == {
        "cmd": "history", "crm_token": "tok", "type": "out", "user": "admin", "phone": CLIENT, "duration": "45",
        "callid": callid, "status": "Success", "diversion": NUMBER, "ext": "701", "wait": "5"}
    assert out_events(crm, callid) == [("OUTGOING", "admin", "out"), ("ACCEPTED", "admin", "out"),
                                       ("COMPLETED", "admin", "out")]
    outgoing = next(r for r in crm.got if r.get("type") == "OUTGOING")
    assert outgoing == {"cmd": "event", "crm_token": "tok", "type": "OUTGOING", "callid": callid, "phone": CLIENT,
                        "user": "admin", "direction": "out", "diversion": NUMBER, "ext": "701"}
    assert not [r for r in crm.got if r["cmd"] == "contact"]  # no contact lookup for outgoing calls
    row = history(t, callid)
    assert (row["type"], row["status"], row["client"], row["diversion"], row["user"], row["user_name"],
            row["wait"], row["duration"], row["destination"]) == (
        "out", "success", CLIENT, NUMBER, "admin", "Администратор", 5, 40, "")
    assert row["record"] == hist["link"]
    out_rows = t.client.get("/crmapi/v1/history/json", params={"period": "this_month", "type": "out"}).json()
    assert [r["uid"] for r in out_rows] == [callid]
    assert t.client.get("/crmapi/v1/history/json", params={"period": "this_month", "type": "in"}).json() == []
    csv = t.client.get("/crmapi/v1/history/csv", params={"period": "this_month"}).text
    fields = csv.rstrip("\r\n").split(",")
    assert fields[:5] == [callid, "out", CLIENT, f"admin@{t.name}", NUMBER]  # via = the caller ID
    assert fields[6:8] == ["5", "40"]


@pytest.mark.parametrize(("action", "status"), [("busy", "Busy"), ("unavailable", "NotAvailable"),
                                                ("notfound", "NotFound")])
def test_client_refuses(setup: tuple[Tenant, Crm], action: str, status: str) -> None:
    t, crm = setup
    external(t, CLIENT, action, after=2)
    call = dial(t, frm="user:manager", to=CLIENT)
    advance(t, 2)
    view = t.client.get(f"/sim/v1/calls/{call['callid']}").json()
    assert (view["state"], view["status"]) == ("ended", status)
    assert [(leg["party"], leg["state"]) for leg in view["legs"]] == [("manager", "ended")]
    hist = crm_history(crm, call["callid"])
    assert (hist["type"], hist["status"], hist["user"], hist["duration"], hist["wait"]) == (
        "out", status, "manager", "2", "2")  # the push's duration: the whole call (issue 13)
    assert hist["diversion"] == NUMBER  # the demo company's main number (9.1 is_main_phone = 13.3 main)
    assert out_events(crm, call["callid"]) == [("OUTGOING", "manager", "out"), ("CANCELLED", "manager", "out")]
    row = history(t, call["callid"])
    assert (row["type"], row["status"], row["duration"]) == ("out", "cancel", 0)


def test_no_answer_is_missed_after_the_ring_timeout(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "ignore")
    call = dial(t, frm="user:704", to=CLIENT)  # by extension
    assert call["from"] == "manager"
    advance(t, 59)
    assert t.client.get(f"/sim/v1/calls/{call['callid']}").json()["state"] == "ringing"
    advance(t, 1)
    assert t.client.get(f"/sim/v1/calls/{call['callid']}").json()["status"] == "Missed"
    hist = crm_history(crm, call["callid"])
    assert (hist["status"], hist["wait"], hist["duration"]) == ("Missed", "60", "60")
    assert history(t, call["callid"])["status"] == "missed"


def test_employee_hangs_up_first_is_cancel(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "ignore")
    call = dial(t, frm="user:maria", to=CLIENT)
    advance(t, 7)
    r = t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "maria"})
    assert (r.json()["state"], r.json()["status"]) == ("ended", "Cancel")
    hist = crm_history(crm, call["callid"])
    assert (hist["status"], hist["wait"]) == ("Cancel", "7")
    assert out_events(crm, call["callid"]) == [("OUTGOING", "maria", "out"), ("CANCELLED", "maria", "out")]


def test_simulator_drives_the_client_by_hand(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "ignore")
    first = dial(t, frm="user:admin", to=CLIENT)
    r = t.client.post(f"/sim/v1/calls/{first['callid']}/answer", json={})
    assert r.status_code == 200 and r.json()["state"] == "talking", r.text
    advance(t, 12)
    r = t.client.post(f"/sim/v1/calls/{first['callid']}/hangup", json={"by": "admin"})
    assert r.json()["status"] == "Success"
    assert crm_history(crm, first["callid"])["duration"] == "12"
    second = dial(t, frm="user:admin", to=CLIENT)
    r = t.client.post(f"/sim/v1/calls/{second['callid']}/reject", json={"reason": "unavailable"})
    assert r.json()["status"] == "NotAvailable", r.text
    third = dial(t, frm="user:admin", to=CLIENT)
    assert t.client.post(f"/sim/v1/calls/{third['callid']}/answer", json={"user": "manager"}).status_code == 409
    r = t.client.post(f"/sim/v1/calls/{third['callid']}/hangup", json={"by": "client"})  # the client declines
    assert r.json()["status"] == "Busy"


def test_restricted_direction_is_not_dialled(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    set_main(t)
    call = dial(t, frm="user:ivan", to=GERMANY)
    assert (call["state"], call["status"]) == ("ended", "NotAllowed")
    assert [leg["party"] for leg in call["legs"]] == ["ivan"]  # no leg to the client
    hist = crm_history(crm, call["callid"])
    assert (hist["type"], hist["status"], hist["user"], hist["phone"], hist["duration"]) == (
        "out", "NotAllowed", "ivan", GERMANY, "0")
    assert out_events(crm, call["callid"]) == []  # nothing dialled: no event
    assert history(t, call["callid"])["status"] == "cancel"
    # ivan's own rule allows Europe; his department's rule would too
    r = t.client.post("/crmapi/v1/calls-restrictions/users", json={"login": "ivan", "allowed": ["EURO"]})
    assert r.status_code == 204, r.text
    allowed = dial(t, frm="user:ivan", to=GERMANY)
    assert allowed["state"] == "ringing" and [leg["party"] for leg in allowed["legs"]] == ["ivan", f"ext:{GERMANY}"]
    denied = dial(t, frm="user:maria", to=GERMANY)
    assert denied["status"] == "NotAllowed"
    r = t.client.post("/crmapi/v1/calls-restrictions/groups", json={"id": "sales", "allowed": ["EURO"]})
    assert r.status_code == 204
    assert dial(t, frm="user:maria", to=GERMANY)["state"] == "ringing"
    # the company loses mobiles: nobody without a rule of their own may call one
    r = t.client.request("DELETE", "/crmapi/v1/calls-restrictions/main", params={"allowed": "179"})
    assert r.status_code == 204, r.text
    assert dial(t, frm="user:sergey", to=CLIENT)["status"] == "NotAllowed"
    assert dial(t, frm="user:sergey", to="74991234567")["state"] == "ringing"  # LOCAL still allowed


def test_caller_id_precedence(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "ignore")

    def clid_of(login: str) -> str | None:
        call = dial(t, frm=f"user:{login}", to=CLIENT)
        t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": login})
        hist = crm_history(crm, call["callid"])
        assert history(t, call["callid"])["diversion"] == hist.get("diversion", "")
        return hist.get("diversion")

    assert clid_of("admin") == NUMBER  # the company's main number (is_main_phone) from the start
    set_main(t, SPB)
    assert clid_of("admin") == SPB
    set_main(t)
    assert clid_of("admin") == NUMBER
    assert t.client.post("/crmapi/v1/caller-ids/groups", json={"id": "sales", "telnum": SPB}).status_code == 204
    assert clid_of("admin") == SPB  # admin is in sales
    assert clid_of("sergey") == NUMBER  # support has none: the main number
    r = t.client.post("/crmapi/v1/caller-ids/users", json={"login": "admin", "telnum": ADMIN_NUMBER})
    assert r.status_code == 204
    assert clid_of("admin") == ADMIN_NUMBER
    assert clid_of("manager") == SPB
    outgoing = [r for r in crm.got if r.get("type") == "OUTGOING"]
    assert outgoing[-1]["diversion"] == SPB


def test_missed_call_follow_up(setup: tuple[Tenant, Crm]) -> None:
    t, _ = setup
    missed = dial(t)  # the client calls the domain and gives up: missed, not called back (3)
    t.client.post(f"/sim/v1/calls/{missed['callid']}/hangup", json={"by": "client"})
    assert history(t, missed["callid"])["missedStatus"] == 3
    external(t, CLIENT, "busy", after=1)
    busy = dial(t, frm="user:admin", to=CLIENT)
    advance(t, 1)
    assert t.client.get(f"/sim/v1/calls/{busy['callid']}").json()["status"] == "Busy"
    assert history(t, missed["callid"])["missedStatus"] == 4  # employees could not reach the client
    assert "missedStatus" not in history(t, busy["callid"])
    external(t, CLIENT, "answer", after=2, talk=10)
    reached = dial(t, frm="user:manager", to=CLIENT)
    advance(t, 12)
    assert t.client.get(f"/sim/v1/calls/{reached['callid']}").json()["status"] == "Success"
    assert history(t, missed["callid"])["missedStatus"] == 2  # an employee called back and was answered
    rows = t.client.get("/crmapi/v1/history/json", params={"period": "this_month", "processMissed": "1",
                                                           "missedStatus": "2"}).json()
    assert [r["uid"] for r in rows] == [missed["callid"]]


def test_outgoing_errors(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    r = t.client.post("/sim/v1/calls", json={"from": "user:nobody", "to": CLIENT})
    assert r.status_code == 404
    r = t.client.post("/sim/v1/calls", json={"from": "user:admin", "to": "not-a-number"})
    assert r.status_code == 400
    time.sleep(0.2)
    assert crm.got == []
