"""Issue 13 rule 2: the history push's ``duration`` is the whole call (002 §2.1, 000, 004: "общая длительность
звонка"), waiting plus talking, and ``wait`` the waiting part, so a CRM's ``duration - wait`` is the talk. The
exports (002 §4.1/4.2, legacy ``history``) keep ``duration`` = the talk, as their tables say."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.compat.clients import CLIENTS
from tests.compat.conftest import CLIENT, SALES_NUMBER, Env

WAIT, TALK = 7, 63


@pytest.mark.parametrize("client", list(CLIENTS))
def test_incoming_push_duration_is_wait_plus_talk(configure: Callable[[str], Env], client: str) -> None:
    env = configure(client)
    callid = env.dial(to=SALES_NUMBER)
    env.advance(WAIT)
    (leg,) = [leg for leg in env.call(callid)["legs"] if leg["state"] == "ringing"]
    env.act(callid, "answer", user=leg["party"])
    env.advance(TALK)
    env.act(callid, "hangup", by="client")
    push = env.history_push(callid)
    assert push["status"] == "Success"
    assert int(push["duration"]) == WAIT + TALK
    if client in ("form", "json"):  # the legacy editions list no wait
        assert int(push["wait"]) == WAIT
        assert int(push["duration"]) - int(push["wait"]) == TALK
    row = env.history_json(callid)
    assert (row["wait"], row["duration"]) == (WAIT, TALK)
    assert env.history_csv(callid)[6:8] == [str(WAIT), str(TALK)]
    assert env.legacy_csv(callid)[6:8] == [str(WAIT), str(TALK)]


def test_missed_push_duration_is_the_wait(configure: Callable[[str], Env]) -> None:
    env = configure("json")
    callid = env.dial(to=SALES_NUMBER)
    env.advance(WAIT)
    env.act(callid, "hangup", by="client")
    push = env.history_push(callid)
    assert (push["status"], push["duration"], push["wait"]) == ("Missed", WAIT, WAIT)
    row = env.history_json(callid)
    assert (row["wait"], row["duration"]) == (WAIT, 0)


@pytest.mark.parametrize("client", ["json", "legacy-000"])
def test_outgoing_push_duration_is_wait_plus_talk(configure: Callable[[str], Env], client: str) -> None:
    env = configure(client)
    r = env.http.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "answer", "after": 5, "talk": 40}})
    assert r.status_code == 200, r.text
    callid = env.dial(frm="user:admin", to=CLIENT)
    env.advance(5)
    env.advance(40)  # the client hangs up after talking 40 s
    push = env.history_push(callid)
    assert (push["type"], push["status"], int(push["duration"])) == ("out", "Success", 45)
    if client == "json":
        assert push["wait"] == 5
    row = env.history_json(callid)
    assert (row["wait"], row["duration"]) == (5, 40)
