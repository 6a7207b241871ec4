"""The calls page filters history by the missed call's status (002 §4.1 ``missedStatus``), page and CSV alike."""

from __future__ import annotations

from tests.console.support import set_password, sign_in, wait_until

from vpbx.testing.server import ServerThread, Tenant

MAIN = "74951234567"  # the demo company's main number


def test_missed_calls_are_filtered_by_their_status(virtual_server: ServerThread, virtual_tenant: Tenant) -> None:
    c = virtual_tenant.client
    assert c.put("/sim/v1/devices/admin", json={"registered": True}).status_code == 200
    call = c.post("/sim/v1/calls", json={"from": "79101234599", "to": MAIN}).json()
    assert c.post("/sim/v1/clock/advance", json={"seconds": 3}).status_code == 200
    assert c.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"}).status_code in (200, 204)

    def missed() -> bool:
        rows = c.get("/crmapi/v1/history/json", params={"period": "today", "type": "missed"}).json()
        return any(r["uid"] == call["callid"] for r in rows)

    wait_until(missed, what="the missed call in history")  # a missed incoming call starts at missedStatus 3
    browser = sign_in(virtual_server, set_password(virtual_tenant, "admin"))
    try:
        shown = browser.get("/console/calls", params={"period": "today", "missedStatus": "3"})
        assert shown.status_code == 200 and "79101234599" in shown.text
        assert "79101234599" not in browser.get("/console/calls", params={"period": "today",
                                                                           "missedStatus": "2"}).text
        csv = browser.get("/console/calls.csv", params={"period": "today", "missedStatus": "3"})
        assert csv.status_code == 200 and "79101234599" in csv.text
        wrong = browser.get("/console/calls", params={"period": "today", "missedStatus": "9"})
        assert wrong.status_code == 400 and "1, 2, 3 or 4" in wrong.text  # the API's field error, by the field
    finally:
        browser.close()
