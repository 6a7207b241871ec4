"""Issue 13 rule 1: an unanswered incoming call is ``Missed`` in the history push, whoever hung up and wherever
the call was (greeting, IVR, ringing employees); ``Cancel`` is an outgoing or click-to-call attempt the employee
abandoned before the client answered. The push (read by each strict client), ``/history/json``, the 4.1 CSV and
the legacy ``history`` agree for the same call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.compat.clients import CLIENTS
from tests.compat.conftest import ADMIN_NUMBER, CLIENT, IVR_NUMBER, SALES_NUMBER, Env

CLIENT_NAMES = list(CLIENTS)


def _greeting(env: Env) -> str:
    callid = env.dial(to=ADMIN_NUMBER)  # admin's number greets first
    assert env.call(callid)["state"] == "greeting"
    env.act(callid, "hangup", by="client")
    return callid


def _ivr(env: Env) -> str:
    callid = env.dial(to=IVR_NUMBER)
    env.advance(6)  # past the greeting: the menu waits for a button
    assert env.call(callid)["state"] not in ("ended", "greeting")
    env.act(callid, "hangup", by="client")
    return callid


def _ringing(env: Env) -> str:
    callid = env.dial(to=SALES_NUMBER)
    assert env.call(callid)["state"] == "ringing"
    env.act(callid, "hangup", by="client")
    return callid


def _declined_then_gone(env: Env) -> str:
    """The ringing employee declines, then the client gives up while the department goes on ringing."""
    callid = env.dial(to=SALES_NUMBER)
    (leg,) = [leg for leg in env.call(callid)["legs"] if leg["state"] == "ringing"]
    env.act(callid, "reject", user=leg["party"])
    if env.call(callid)["state"] != "ended":
        env.act(callid, "hangup", by="client")
    return callid


WHERE: dict[str, Callable[[Env], str]] = {"greeting": _greeting, "ivr": _ivr, "ringing": _ringing,
                                          "declined": _declined_then_gone}


@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_unanswered_incoming_call_is_missed_everywhere(configure: Callable[[str], Env], client: str,
                                                       where: str) -> None:
    env = configure(client)
    callid = WHERE[where](env)
    push = env.history_push(callid)
    assert push["type"] == "in"
    assert push["status"].casefold() == "missed"
    if client in ("form", "json"):
        assert push["status"] == "Missed"  # 002 §2.1's spelling
    assert env.call(callid)["status"] == "Missed"
    row = env.history_json(callid)
    assert (row["type"], row["status"]) == ("in", "missed")
    assert env.history_csv(callid)[1] == "missed"
    assert env.legacy_csv(callid)[1] == "missed"


def test_employee_abandoning_click_to_call_is_cancel(configure: Callable[[str], Env]) -> None:
    env = configure("json")
    r = env.http.post("/crmapi/v1/makecall", json={"phone": CLIENT, "user": "admin"})
    assert r.status_code == 200, r.text
    callid = r.json()["callid"]
    env.act(callid, "hangup", by="admin")  # admin's phone rang; admin gave up before the client was dialled
    push = env.history_push(callid)
    assert (push["type"], push["status"]) == ("out", "Cancel")
    row = env.history_json(callid)
    assert row["type"] == "out" and row["status"] != "success"
