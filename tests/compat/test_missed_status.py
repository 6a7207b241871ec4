"""Issue 13 rule 3: ``missedStatus`` (4.2: 1 the client called back, 2 called back, 3 not called back, 4 not
reached) is a number in the JSON dialect, as in ``/history/json``, and the history push of the call that settles a
missed call carries the missed call's new status, so a CRM can close its missed-call card."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.compat.conftest import CLIENT, SALES_NUMBER, Env


def missed_call(env: Env) -> str:
    callid = env.dial(to=SALES_NUMBER)
    env.advance(3)
    env.act(callid, "hangup", by="client")
    return callid


@pytest.mark.parametrize("client", ["json", "form"])
def test_employee_calling_back_carries_missed_status_2(configure: Callable[[str], Env], client: str) -> None:
    env = configure(client)
    missed = missed_call(env)
    push = env.history_push(missed)
    assert (push["status"], push["missedStatus"]) == ("Missed", 3)  # the strict client typed it: a number
    if client == "json":
        raw = next(r for r in env.crm.got if r.cmd == "history").body
        assert b'"missedStatus":3' in raw
    env.http.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "answer", "after": 2, "talk": 10}})
    back = env.dial(frm="user:manager", to=CLIENT)
    env.advance(2 + 10)
    push = env.history_push(back)
    assert (push["type"], push["status"], push["missedStatus"]) == ("out", "Success", 2)
    assert env.history_json(missed)["missedStatus"] == 2
    assert "missedStatus" not in env.history_json(back)


def test_client_calling_back_and_answered_carries_missed_status_1(configure: Callable[[str], Env]) -> None:
    env = configure("json")
    missed = missed_call(env)
    assert env.history_push(missed)["missedStatus"] == 3
    again = env.dial(to=SALES_NUMBER)
    (leg,) = [leg for leg in env.call(again)["legs"] if leg["state"] == "ringing"]
    env.act(again, "answer", user=leg["party"])
    env.advance(20)
    env.act(again, "hangup", by="client")
    push = env.history_push(again)
    assert (push["status"], push["missedStatus"]) == ("Success", 1)
    assert env.history_json(missed)["missedStatus"] == 1


def test_calling_back_without_reaching_carries_missed_status_4(configure: Callable[[str], Env]) -> None:
    env = configure("json")
    missed = missed_call(env)
    env.http.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "busy", "after": 2}})
    back = env.dial(frm="user:manager", to=CLIENT)
    env.advance(3)
    push = env.history_push(back)
    assert (push["status"], push["missedStatus"]) == ("Busy", 4)
    assert env.history_json(missed)["missedStatus"] == 4


def test_calls_settling_nothing_carry_no_missed_status(configure: Callable[[str], Env]) -> None:
    env = configure("json")
    env.http.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "answer", "after": 2, "talk": 10}})
    out = env.dial(frm="user:manager", to=CLIENT)
    env.advance(12)
    assert "missedStatus" not in env.history_push(out)
    callid = env.dial(to=SALES_NUMBER)
    (leg,) = [leg for leg in env.call(callid)["legs"] if leg["state"] == "ringing"]
    env.act(callid, "answer", user=leg["party"])
    env.act(callid, "hangup", by="client")
    assert "missedStatus" not in env.history_push(callid)
