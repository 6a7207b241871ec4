"""Quality ratings (002 §2.4, call-flows step 10): a number or a department that asks (the vpbx extension
``PUT /crmapi/v1/rating``) keeps the client on the line after the employee hangs up; the score sends ``rating``
and fills the history's ``rating``."""

from __future__ import annotations

import time

from tests.engine.test_incoming import CLIENT, NUMBER, Crm, _server_on_tenant, advance, dial, history, setup
from tests.engine.test_outgoing import crm_history

from vpbx.testing.server import Tenant

__all__ = ["_server_on_tenant", "setup"]  # fixtures, reused


def talk(t: Tenant, seconds: float = 20) -> str:
    call = dial(t)
    t.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "admin"})
    advance(t, seconds)
    r = t.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "admin"})
    assert r.status_code == 200, r.text
    return str(call["callid"])


def test_department_asks_and_the_client_rates(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    r = t.client.put("/crmapi/v1/rating", json={"groups": ["700"]})  # sales, by extension
    assert (r.status_code, r.json()) == (200, {"telnums": [], "groups": ["sales"]})
    callid = talk(t)
    view = t.client.get(f"/sim/v1/calls/{callid}").json()
    assert (view["state"], view["announcements"][-1]) == ("rating", "rating")
    advance(t, 3)
    r = t.client.post(f"/sim/v1/calls/{callid}/rate", json={"rating": 5})
    assert (r.json()["state"], r.json()["status"], r.json()["rating"]) == ("ended", "Success", 5)
    hist = crm_history(crm, callid)
    assert (hist["rating"], hist["duration"], hist["user"]) == ("5", "20", "admin")  # the talk only
    rating = next(r for r in crm.got if r["cmd"] == "rating")
    assert rating == {"cmd": "rating", "crm_token": "tok", "phone": CLIENT, "callid": callid, "rating": "5",
                      "user": "admin", "ext": "701"}
    assert [r["cmd"] for r in crm.got if r.get("callid") == callid][-3:] == ["event", "rating", "history"]
    assert [e for e in crm.events() if e[0] == "COMPLETED"] == [("COMPLETED", "admin")]
    row = history(t, callid)
    assert (row["rating"], row["duration"]) == (5, 20)
    csv = t.client.get("/crmapi/v1/history/csv", params={"period": "this_month"}).text
    assert csv.rstrip("\r\n").split(",")[-1] == "5"  # the 10th column


def test_number_asks_and_the_client_presses_a_key(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    assert t.client.put("/crmapi/v1/rating", json={"telnums": [f"+{NUMBER}"]}).json()["telnums"] == [NUMBER]
    callid = talk(t, 15)
    r = t.client.post(f"/sim/v1/calls/{callid}/dtmf", json={"digits": "4"})
    assert (r.json()["status"], r.json()["rating"]) == ("Success", 4)
    assert crm_history(crm, callid)["rating"] == "4"
    # no score: the client hangs up, or the question times out; the call stays a success without a rating
    gone = talk(t)
    assert t.client.post(f"/sim/v1/calls/{gone}/hangup", json={"by": "client"}).json()["status"] == "Success"
    silent = talk(t)
    advance(t, 10)
    assert t.client.get(f"/sim/v1/calls/{silent}").json()["status"] == "Success"
    for callid in (gone, silent):
        hist = crm_history(crm, callid)
        assert "rating" not in hist and hist["duration"] == "20"
        assert "rating" not in history(t, callid)
    time.sleep(0.2)
    assert sum(1 for r in crm.got if r["cmd"] == "rating") == 1


def test_calls_that_do_not_ask(setup: tuple[Tenant, Crm]) -> None:
    t, crm = setup
    callid = talk(t)
    view = t.client.get(f"/sim/v1/calls/{callid}").json()
    assert (view["state"], view["status"], view["rating"]) == ("ended", "Success", None)
    assert t.client.post(f"/sim/v1/calls/{callid}/rate", json={"rating": 5}).status_code == 409
    assert t.client.post(f"/sim/v1/calls/{callid}/rate", json={"rating": 6}).status_code == 400
    assert "rating" not in crm_history(crm, callid)


def test_rating_settings_errors(setup: tuple[Tenant, Crm]) -> None:
    t, _ = setup
    for body, field in (({"telnums": ["74990000000"]}, "telnums.0"), ({"telnums": ["x"]}, "telnums.0"),
                        ({"groups": ["sales", "nogroup"]}, "groups.1")):
        r = t.client.put("/crmapi/v1/rating", json=body)
        assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert t.client.get("/crmapi/v1/rating").json() == {"telnums": [], "groups": []}
    t.client.put("/crmapi/v1/rating", json={"telnums": [NUMBER], "groups": ["sales"]})
    assert t.client.put("/crmapi/v1/rating", json={"groups": []}).json() == {"telnums": [NUMBER], "groups": []}
