"""Click-to-call (002 §5.1 ``POST /crmapi/v1/makecall``, legacy makeCall): the employee (or the department)
rings first, then the client; end to end on the virtual clock with the loopback CRM."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.engine.test_incoming import CLIENT, NUMBER, Crm, _server_on_tenant, advance, history, setup, t_server
from tests.engine.test_outgoing import GERMANY, SPB, crm_history, external, out_events, set_main

from vpbx.services import callerids, tenancy
from vpbx.testing.server import Tenant

__all__ = ["_server_on_tenant", "setup"]  # fixtures, reused


def makecall(t: Tenant, **body: Any) -> httpx.Response:
    return t.client.post("/crmapi/v1/makecall", json=body)


def placed(t: Tenant, **body: Any) -> dict[str, Any]:
    r = makecall(t, **body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"callid", "clid"}
    view = t.client.get(f"/sim/v1/calls/{out['callid']}").json()
    return {**view, "clid": out["clid"]}


def test_employee_rings_first_then_the_client(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    set_main(t)
    external(t, CLIENT, "answer", after=4, talk=30)
    call = placed(t, phone=f"+{CLIENT}", user="admin")
    callid = call["callid"]
    assert (call["clid"], call["kind"], call["phase"], call["state"]) == (NUMBER, "outgoing", "agent", "ringing")
    assert [(leg["party"], leg["state"], leg["caller_name"]) for leg in call["legs"]] == [
        ("admin", "ringing", None)]
    advance(t, 6)
    assert t.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"}).json()["phase"] == "client"
    legs = t.client.get(f"/sim/v1/calls/{callid}").json()["legs"]
    assert [(leg["party"], leg["state"]) for leg in legs] == [("admin", "talking"), (f"ext:{CLIENT}", "ringing")]
    advance(t, 4)
    assert t.client.get(f"/sim/v1/calls/{callid}").json()["state"] == "talking"
    advance(t, 30)
    hist = crm_history(crm, callid)
    assert {k: v for k, v in hist.items() if k not in ("start", "link")} == {
        "cmd": "history", "crm_token": "tok", "type": "out", "user": "admin", "phone": CLIENT, "duration": "40",
        "callid": callid, "status": "Success", "diversion": NUMBER, "ext": "701", "wait": "10"}
    assert out_events(crm, callid) == [("OUTGOING", "admin", "out"), ("ACCEPTED", "admin", "out"),
                                       ("COMPLETED", "admin", "out")]
    row = history(t, callid)
    assert (row["type"], row["status"], row["user"], row["diversion"], row["duration"]) == (
        "out", "success", "admin", NUMBER, 30)


def test_show_phone_and_extension(setup: tuple[Tenant, Crm]) -> None:
    t, _ = setup
    call = placed(t, phone=CLIENT, user="704", show_phone=True)
    assert call["from"] == "manager"
    assert [(leg["party"], leg["caller_name"]) for leg in call["legs"]] == [("manager", CLIENT)]
    t.client.post(f"/sim/v1/calls/{call['callid']}/reject", json={"user": "manager"})


def test_employee_not_answering_is_cancel_without_dialling(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    call = placed(t, phone=CLIENT, user="maria")
    advance(t, 59)
    assert t.client.get(f"/sim/v1/calls/{call['callid']}").json()["phase"] == "agent"
    advance(t, 1)
    view = t.client.get(f"/sim/v1/calls/{call['callid']}").json()
    assert (view["state"], view["status"], view["legs"]) == ("ended", "Cancel", [])
    hist = crm_history(crm, call["callid"])
    assert (hist["type"], hist["status"], hist["user"], hist["phone"], hist["wait"]) == (
        "out", "Cancel", "maria", CLIENT, "60")
    assert out_events(crm, call["callid"]) == []  # the client was never dialled
    # declining, or not being reachable at all, ends it the same way, at once
    declined = placed(t, phone=CLIENT, user="maria")
    r = t.client.post(f"/sim/v1/calls/{declined['callid']}/reject", json={"user": "maria"})
    assert r.json()["status"] == "Cancel"
    t.client.put("/sim/v1/devices/maria", json={"registered": False})
    offline = placed(t, phone=CLIENT, user="maria")
    assert (offline["state"], offline["status"]) == ("ended", "Cancel")
    assert crm_history(crm, offline["callid"])["status"] == "Cancel"


def test_employee_hangs_up_while_the_client_rings(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "ignore")
    call = placed(t, phone=CLIENT, user="admin")
    t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "admin"})
    advance(t, 8)
    r = t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "admin"})
    assert r.json()["status"] == "Cancel"
    assert crm_history(crm, call["callid"])["status"] == "Cancel"  # delivered after the call's events
    assert out_events(crm, call["callid"]) == [("OUTGOING", "admin", "out"), ("CANCELLED", "admin", "out")]


def test_department_rings_by_its_strategy(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "answer", after=2, talk=20)
    call = placed(t, phone=CLIENT, group="706")  # hr by extension: ALL rings elena and director at once
    assert sorted(leg["party"] for leg in call["legs"]) == ["director", "elena"]
    r = t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "director"})
    assert [leg["party"] for leg in r.json()["legs"]] == ["director", f"ext:{CLIENT}"]
    assert r.json()["from"] == "director"
    advance(t, 22)
    hist = crm_history(crm, call["callid"])
    assert (hist["status"], hist["user"], hist["ext"], hist["groupRealName"], hist["group"]) == (
        "Success", "director", "703", "Отдел кадров", "hr")
    assert out_events(crm, call["callid"]) == [("OUTGOING", "director", "out"), ("ACCEPTED", "director", "out"),
                                               ("COMPLETED", "director", "out")]
    # sales rings BYORDER: admin first, then manager after call_duration; nobody answers: Cancel
    sales = placed(t, phone=CLIENT, group="sales")
    assert [leg["party"] for leg in sales["legs"]] == ["admin"]
    advance(t, 10)
    assert [leg["party"] for leg in t.client.get(f"/sim/v1/calls/{sales['callid']}").json()["legs"]] == ["manager"]
    advance(t, 120)
    assert t.client.get(f"/sim/v1/calls/{sales['callid']}").json()["status"] == "Cancel"
    hist = crm_history(crm, sales["callid"])
    assert (hist["status"], hist["user"], hist["group"]) == ("Cancel", "pbx", "sales")
    csv = t.client.get("/crmapi/v1/history/csv", params={"period": "this_month", "type": "out"}).text
    assert f"sales@{t.name}" in csv


def test_department_member_without_the_direction_is_not_allowed(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    call = placed(t, phone=GERMANY, group="hr")
    r = t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "elena"})
    assert (r.json()["state"], r.json()["status"]) == ("ended", "NotAllowed")
    assert crm_history(crm, call["callid"])["status"] == "NotAllowed"


def test_clid(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    set_main(t)
    call = placed(t, phone=CLIENT, user="admin", clid=f"+{SPB}")
    assert call["clid"] == SPB
    t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "admin"})
    crm.wait_for("event")
    assert next(r for r in crm.got if r.get("type") == "OUTGOING")["diversion"] == SPB
    t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "admin"})
    assert crm_history(crm, call["callid"])["diversion"] == SPB
    server = t_server(t)

    async def disable() -> None:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            await callerids.set_outgoing(s, domain.id, SPB, False)
            await s.commit()

    server.call(disable())
    r = makecall(t, phone=CLIENT, user="admin", clid=SPB)
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["clid"], r.text
    r = makecall(t, phone=CLIENT, user="admin", clid="74990000000")  # not the domain's
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["clid"]


@pytest.mark.parametrize(("body", "field"), [
    ({"phone": CLIENT, "user": "nobody"}, "user"),
    ({"phone": CLIENT, "group": "nogroup"}, "group"),
    ({"phone": CLIENT}, "user"),
    ({"phone": "not-a-number", "user": "admin"}, "phone"),
    ({"phone": GERMANY, "user": "admin"}, "phone"),  # EURO is not allowed to admin
    ({"phone": CLIENT, "user": "admin", "clid": "x"}, "clid"),
    ({"user": "admin"}, "phone"),
])
def test_makecall_errors(setup: tuple[Tenant, Crm], body: dict[str, Any], field: str) -> None:
    t, crm = setup
    r = makecall(t, **body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert t.client.get("/sim/v1/calls").json() == []
    time.sleep(0.1)
    assert crm.got == []


def test_legacy_make_call(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    external(t, CLIENT, "answer", after=1, talk=5)
    r = t.client.post("/sys/crm_api.wcgp", data={"cmd": "makeCall", "user": "701", "phone": f"+{CLIENT}",
                                                 "clid": NUMBER, "token": t.legacy_token})
    assert r.status_code == 200, r.text
    callid = r.json()["CallID"]
    assert r.json() == {"CallID": callid}  # the 000 edition's answer (issue 13)
    t.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"})
    advance(t, 6)
    hist = crm_history(crm, callid)
    assert (hist["type"], hist["status"], hist["user"], hist["diversion"], hist["duration"]) == (
        "out", "Success", "admin", NUMBER, "6")  # 1 s waiting for the client + 5 s talking
