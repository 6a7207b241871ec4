"""8.3 ``advanced=callback`` (call-flows step 7 and "Missed-call follow-up"): a waiting client presses 1, the call
ends as a missed call (missedStatus 3), and the PBX calls back as the department's outgoing call; its outcome
settles the missed call's missedStatus (2 reached, 4 not reached). On the virtual clock, with a loopback CRM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.engine.test_incoming import CLIENT, NUMBER, advance, dial, history
from tests.engine.test_rules import Env, make_env

from vpbx.testing.server import ServerThread, Tenant

SALES = ("admin", "manager", "ivan", "maria")


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    for e in make_env(vserver, vtenant):
        assert e.c.put("/crmapi/v1/groups/sales", json={"advanced": "callback"}).status_code == 200
        yield e


def offline(env: Env, *logins: str) -> None:
    for login in logins:
        env.c.put(f"/sim/v1/devices/{login}", json={"registered": False})
    env.user("ivan", mobile_redirect_enabled=False)


def missed_status(env: Env, callid: str) -> Any:
    return history(env.t, callid)["missedStatus"]


def test_offer_when_nobody_is_free_then_the_callback_reaches_the_client(env: Env) -> None:
    offline(env, *SALES)
    call = dial(env.t)
    callid = call["callid"]
    view = env.call(callid)
    assert (view["state"], view["announcements"]) == ("offer", ["callback_offer"])
    env.act(callid, "dtmf", digits="1")
    view = env.call(callid)
    assert (view["state"], view["status"], view["callback_requested"]) == ("ended", "Missed", True)
    h = env.hist()
    assert (h["status"], h["missedStatus"], h["group"]) == ("Missed", "3", "sales")
    assert missed_status(env, callid) == 3
    # manager comes back; 5 s later the PBX calls back: manager's phone rings first, then the client's
    env.c.put("/sim/v1/devices/manager", json={"registered": True})
    env.c.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "answer", "after": 4, "talk": 50}})
    advance(env.t, 5)
    live = env.c.get("/sim/v1/calls").json()
    assert len(live) == 1 and live[0]["callback_of"] == callid and live[0]["kind"] == "outgoing"
    back = live[0]["callid"]
    assert env.ringing(back) == ["manager"]
    env.act(back, "answer", user="manager")
    assert env.ringing(back) == [f"ext:{CLIENT}"]
    advance(env.t, 4 + 50)
    env.crm.wait_for("history", 2)
    got = [(r["cmd"], r.get("type"), r.get("user"), r["callid"]) for r in env.crm.got if r["cmd"] != "contact"]
    assert got == [("history", "in", "pbx", callid), ("event", "OUTGOING", "manager", back),
                   ("event", "ACCEPTED", "manager", back), ("event", "COMPLETED", "manager", back),
                   ("history", "out", "manager", back)]
    out = [r for r in env.crm.got if r["cmd"] == "history"][1]
    assert (out["status"], out["phone"], out["duration"], out["diversion"]) == ("Success", CLIENT, "54", NUMBER)
    assert out["missedStatus"] == "2"  # the callback's push closes the missed call's card (issue 13)
    assert missed_status(env, callid) == 2  # "called back"


def test_pressing_1_while_the_department_rings(env: Env) -> None:
    call = dial(env.t)
    callid = call["callid"]
    assert env.ringing(callid) == ["admin"]  # sales rings by order
    env.act(callid, "dtmf", digits="1")
    assert env.call(callid)["status"] == "Missed"
    assert env.sent() == ["contact", "INCOMING:admin", "CANCELLED:admin", "history"]
    advance(env.t, 5)
    back = env.c.get("/sim/v1/calls").json()[0]["callid"]
    assert env.ringing(back) == ["admin"]


def test_the_client_does_not_answer_the_callback(env: Env) -> None:
    call = dial(env.t)
    env.act(call["callid"], "dtmf", digits="1")
    env.c.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "busy", "after": 2}})
    for login in SALES:
        env.c.put(f"/sim/v1/devices/{login}", json={"registered": True, "auto": {"action": "answer", "after": 1}})
    advance(env.t, 5 + 1 + 2)
    env.crm.wait_for("history", 2)  # the missed call's and the callback's, in either order (two calls)
    out = next(r for r in env.crm.got if r["cmd"] == "history" and r["callid"] != call["callid"])
    assert (out["type"], out["status"], out["user"], out["missedStatus"]) == ("out", "Busy", "admin", "4")
    assert missed_status(env, call["callid"]) == 4  # "could not reach"


def test_nobody_free_for_the_callback_retries(env: Env) -> None:
    offline(env, *SALES)
    call = dial(env.t)
    env.act(call["callid"], "dtmf", digits="1")
    advance(env.t, 5)  # first attempt: nobody can take it (Cancel, the client is not dialled)
    assert env.c.get("/sim/v1/calls").json() == []
    env.c.put("/sim/v1/devices/maria", json={"registered": True})
    advance(env.t, 300)  # second attempt
    live = env.c.get("/sim/v1/calls").json()
    assert len(live) == 1 and env.ringing(live[0]["callid"]) == ["maria"]
    env.crm.wait_for("history", 2)  # the missed call's and the first attempt's, in either order (two calls)
    rows = [r for r in env.crm.got if r["cmd"] == "history"]
    assert sorted((r["type"], r["status"]) for r in rows) == [("in", "Missed"), ("out", "Cancel")]
    assert missed_status(env, call["callid"]) == 3  # nobody reached the client yet


def test_offer_lapses_to_the_timeout_target(env: Env) -> None:
    offline(env, *SALES)
    call = dial(env.t)
    advance(env.t, 10)  # no key pressed: the department's timeout target (voicemail)
    assert env.call(call["callid"])["state"] == "voicemail"


def test_no_offer_without_callback_or_for_anonymous(env: Env) -> None:
    call = dial(env.t, frm="anonymous")
    env.act(call["callid"], "dtmf", digits="1")
    assert env.call(call["callid"])["state"] == "ringing"
    assert env.c.put("/crmapi/v1/groups/sales", json={"advanced": "off"}).status_code == 200
    other = dial(env.t, frm="79101230000")
    env.act(other["callid"], "dtmf", digits="1")
    view = env.call(other["callid"])
    assert view["state"] == "ringing" and "callback_offer" not in view["announcements"]
