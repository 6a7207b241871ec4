"""Transfers (call-flows "Talk, transfer", 002 §2.2 TRANSFERRED/second_callid) on the virtual clock, with the
exact requests the loopback CRM got: attended and semi-attended transfers of incoming calls, and blind and
attended transfers of outgoing calls. Blind transfers of incoming calls are in test_rules.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.engine.test_incoming import advance, dial, history
from tests.engine.test_rules import OUTSIDE, Env, label, make_env

from vpbx.testing.server import ServerThread, Tenant


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    yield from make_env(vserver, vtenant)


def inner(env: Env) -> list[dict[str, Any]]:
    r = env.c.get("/crmapi/v1/history/inner/json", params={"period": "this_month"})
    assert r.status_code == 200, r.text
    return list(r.json())


def talking(env: Env, callid: str) -> list[str]:
    return [leg["party"] for leg in env.call(callid)["legs"] if leg["state"] == "talking"]


def answered_by_admin(env: Env) -> str:
    call = dial(env.t)
    env.act(call["callid"], "answer", user="admin")
    return str(call["callid"])


# --- attended transfers of incoming calls ---------------------------------------------------------

def test_attended_transfer_to_an_employee(env: Env) -> None:
    """admin consults manager (an internal call: no CRM requests), then hangs up: manager joins the client's
    call, which keeps its callid: TRANSFERRED without second_callid, then manager's card."""
    callid = answered_by_admin(env)
    advance(env.t, 10)
    view = env.act(callid, "transfer", user="admin", to="manager", mode="attended")
    consult = view["consult"]
    assert view["callid"] == callid and consult and view["announcements"][-1] == "hold"
    assert env.ringing(consult) == ["manager"] and env.call(consult)["kind"] == "internal"
    assert env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "ivan"}).status_code == 409
    env.act(consult, "answer", user="manager")
    advance(env.t, 5)
    env.act(callid, "hangup", by="admin")  # completes the transfer
    assert talking(env, callid) == ["manager"]
    assert env.call(consult)["state"] == "ended"
    advance(env.t, 20)
    env.act(callid, "hangup", by="client")
    assert env.sent() == ["contact", "INCOMING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "INCOMING:manager",
                          "ACCEPTED:manager", "COMPLETED:manager", "history"]
    transferred = next(r for r in env.crm.got if r.get("type") == "TRANSFERRED")
    assert transferred["callid"] == callid and "second_callid" not in transferred
    accepted = [r for r in env.crm.got if r.get("type") == "ACCEPTED"][1]
    assert (accepted["callid"], accepted["user"], accepted["ext"]) == (callid, "manager", "704")
    h = env.hist()
    assert (h["callid"], h["status"], h["user"], h["duration"]) == (callid, "Success", "manager", "35")
    first = [c for c in env.c.get("/crmapi/v1/history/json", params={"period": "this_month",
                                                                      "first_answered": "true"}).json()]
    assert [c["user"] for c in first if c["uid"] == callid] == ["admin"]
    consults = [c for c in inner(env) if c["uid"] == consult]
    assert len(consults) == 1 and consults[0]["status"] == "success"


def test_semi_attended_transfer(env: Env) -> None:
    """admin hangs up while manager's phone still rings: the transfer goes on blind (second_callid)."""
    callid = answered_by_admin(env)
    consult = env.act(callid, "transfer", user="admin", to="manager", mode="attended")["consult"]
    env.act(callid, "hangup", by="admin")
    second = env.call(callid)["continued_as"]
    assert second and env.ringing(second) == ["manager"]
    assert env.call(consult)["state"] == "ended"
    env.act(second, "answer", user="manager")
    env.act(second, "hangup", by="client")
    assert env.sent_by_call(callid, second) == {
        callid: ["contact", "INCOMING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "history"],
        second: ["INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager", "history"]}
    transferred = next(r for r in env.crm.got if r.get("type") == "TRANSFERRED")
    assert transferred["second_callid"] == second
    assert [c["status"] for c in inner(env) if c["uid"] == consult] == ["noanswer"]


def test_attended_transfer_declined_returns_to_the_client(env: Env) -> None:
    callid = answered_by_admin(env)
    consult = env.act(callid, "transfer", user="admin", to="manager", mode="attended")["consult"]
    env.act(consult, "reject", user="manager")
    view = env.call(callid)
    assert view["consult"] is None and view["announcements"][-1] == "unhold"
    assert talking(env, callid) == ["admin"]
    # admin is still busy with the client: a second call to the department does not ring admin
    other = dial(env.t, frm="79101230000")
    assert "admin" not in env.ringing(other["callid"])
    env.act(callid, "hangup", by="client")
    assert [s for s in env.sent_by_call(callid)[callid] if not s.endswith(":manager")] == [
        "contact", "INCOMING:admin", "ACCEPTED:admin", "COMPLETED:admin", "history"]
    assert "contact" in [label(r) for r in env.crm.got if r.get("callid") == other["callid"]]
    h = env.histories_of(callid)[callid]
    assert (h["status"], h["user"]) == ("Success", "admin")


def test_attended_transfer_to_a_department(env: Env) -> None:
    callid = answered_by_admin(env)
    consult = env.act(callid, "transfer", user="admin", to="hr", mode="attended")["consult"]
    assert sorted(env.ringing(consult)) == ["director", "elena"]
    env.act(consult, "answer", user="elena")
    env.act(consult, "hangup", by="admin")  # hanging up the consultation completes it too
    assert talking(env, callid) == ["elena"]
    env.act(callid, "hangup", by="elena")
    h = env.hist()
    assert (h["callid"], h["user"]) == (callid, "elena")
    assert [(c["from"], c["to"]) for c in inner(env) if c["uid"] == consult] == [("admin", "elena")]


def test_attended_transfer_to_an_outside_number(env: Env) -> None:
    """The consultation is an outgoing call (OUTGOING for admin); completed, the outside party stays with the
    client; its automatic hang-up (after ``talk``) ends the client's call."""
    env.c.put(f"/sim/v1/externals/{OUTSIDE}", json={"auto": {"action": "answer", "after": 2, "talk": 40}})
    callid = answered_by_admin(env)
    consult = env.act(callid, "transfer", user="admin", to=OUTSIDE, mode="attended")["consult"]
    assert env.call(consult)["kind"] == "outgoing"
    advance(env.t, 2)
    assert talking(env, consult) == ["admin", f"ext:{OUTSIDE}"]
    env.act(callid, "hangup", by="admin")
    assert talking(env, callid) == [f"ext:{OUTSIDE}"]
    advance(env.t, 40)
    assert env.call(callid)["state"] == "ended"
    hists = env.histories_of(consult, callid)  # two calls: their requests arrive in any order between them
    assert [(h["callid"], h["type"], h["status"]) for h in hists.values()] == [(consult, "out", "Success"),
                                                                                (callid, "in", "Success")]
    events = [(r["type"], r["callid"]) for r in env.crm.got if r["cmd"] == "event"]
    assert ("OUTGOING", consult) in events and ("TRANSFERRED", callid) in events


# --- transfers of outgoing calls ------------------------------------------------------------------

def outgoing_talking(env: Env) -> str:
    env.c.put(f"/sim/v1/externals/{OUTSIDE}", json={"auto": {"action": "answer", "after": 1, "talk": 100}})
    r = env.c.post("/sim/v1/calls", json={"from": "user:admin", "to": OUTSIDE})
    assert r.status_code == 201, r.text
    advance(env.t, 1)
    callid = str(r.json()["callid"])
    assert env.call(callid)["state"] == "talking"
    return callid


def test_blind_transfer_of_an_outgoing_call(env: Env) -> None:
    callid = outgoing_talking(env)
    advance(env.t, 9)
    assert env.c.post(f"/sim/v1/calls/{callid}/transfer",
                      json={"user": f"ext:{OUTSIDE}", "to": "manager"}).status_code == 409  # the client can't
    second = env.act(callid, "transfer", user="admin", to="manager")["callid"]
    assert env.ringing(second) == ["manager"]
    env.act(second, "answer", user="manager")
    advance(env.t, 91)  # the outside party hangs up 100 s after it answered (at 1 s)
    assert env.sent_by_call(callid, second) == {
        callid: ["OUTGOING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "history"],
        second: ["INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager", "history"]}
    hists = list(env.histories_of(callid, second).values())
    transferred = next(r for r in env.crm.got if r.get("type") == "TRANSFERRED")
    assert (transferred["direction"], transferred["phone"], transferred["second_callid"]) == ("out", OUTSIDE, second)
    incoming = next(r for r in env.crm.got if r.get("type") == "INCOMING")
    assert (incoming["direction"], incoming["phone"], incoming["callid"]) == ("out", OUTSIDE, second)
    assert [(h["callid"], h["type"], h["user"], h["status"], h["duration"]) for h in hists] == [
        (callid, "out", "admin", "Success", "10"), (second, "out", "manager", "Success", "91")]
    assert hists[0].get("diversion") == hists[1].get("diversion")  # the caller ID the client sees stays the same
    row = history(env.t, second)
    assert (row["type"], row["client"], row["user"]) == ("out", OUTSIDE, "manager")


def test_attended_transfer_of_an_outgoing_call(env: Env) -> None:
    callid = outgoing_talking(env)
    consult = env.act(callid, "transfer", user="admin", to="704", mode="attended")["consult"]
    env.act(consult, "answer", user="manager")
    env.act(consult, "hangup", by="admin")
    assert talking(env, callid) == [f"ext:{OUTSIDE}", "manager"]
    env.act(callid, "hangup", by="manager")
    assert env.sent() == ["OUTGOING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "INCOMING:manager",
                          "ACCEPTED:manager", "COMPLETED:manager", "history"]
    h = env.hist()
    assert (h["type"], h["user"], h["phone"]) == ("out", "manager", OUTSIDE)


def test_transfer_errors(env: Env) -> None:
    call = dial(env.t)
    callid = call["callid"]
    r = env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "manager"})
    assert r.status_code == 409  # nobody talks yet
    env.act(callid, "answer", user="admin")
    r = env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "manager", "mode": "warm"})
    assert r.status_code == 400 and r.json()["message"] == "Validation error"
    assert env.c.post("/sim/v1/calls/nope/transfer", json={"user": "admin", "to": "manager"}).status_code == 404
    env.c.put("/sim/v1/devices/manager", json={"registered": False})
    env.user("manager", mobile_redirect_enabled=False)
    r = env.c.post(f"/sim/v1/calls/{callid}/transfer", json={"user": "admin", "to": "manager", "mode": "attended"})
    assert r.status_code == 409  # manager can't take calls: the consultation ends at once
    assert talking(env, callid) == ["admin"]
    env.act(callid, "hangup", by="client")
    assert env.hist()["user"] == "admin"


def test_outgoing_call_transferred_to_a_department_and_on_to_an_outside_number(env: Env) -> None:
    callid = outgoing_talking(env)
    second = env.act(callid, "transfer", user="admin", to="hr")["callid"]
    assert sorted(env.ringing(second)) == ["director", "elena"]
    env.act(second, "answer", user="elena")
    env.c.put("/sim/v1/externals/79035550000", json={"auto": {"action": "answer", "after": 2, "talk": 600}})
    consult = env.act(second, "transfer", user="elena", to="79035550000", mode="attended")["consult"]
    advance(env.t, 2)
    env.act(consult, "hangup", by="elena")  # the outside party joins the client
    assert talking(env, second) == [f"ext:{OUTSIDE}", "ext:79035550000"]  # the client, and now the outside party
    env.act(second, "hangup", by="ext:79035550000")
    hists = list(env.histories_of(callid, consult, second).values())
    assert [(h["callid"], h["type"], h["user"]) for h in hists] == [
        (callid, "out", "admin"), (consult, "out", "elena"), (second, "out", "elena")]  # elena took this part
    assert hists[2].get("groupRealName") == "Отдел кадров"
    transferred = [r for c in (callid, second) for r in env.crm.got if r.get("type") == "TRANSFERRED"
                   and r["callid"] == c]
    assert [(t["user"], t["direction"], "second_callid" in t) for t in transferred] == [
        ("admin", "out", True), ("elena", "out", False)]
