"""Ended calls stay inspectable (``GET /sim/v1/calls/{id}``) only within bounds: the latest ``KEEP_ENDED`` and none
older than ``KEEP_ENDED_SECONDS`` of the clock, so a server's memory stays flat under any call rate (issue 14)."""

from __future__ import annotations

import pytest

from vpbx.engine import core
from vpbx.testing.plugin import DEMO_NUMBER
from vpbx.testing.server import Tenant


def ended_call(t: Tenant, i: int) -> str:
    r = t.client.post("/sim/v1/calls", json={"from": f"7910555{i:04d}", "to": DEMO_NUMBER})
    assert r.status_code == 201, r.text
    callid = str(r.json()["callid"])
    assert t.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"}).status_code == 200
    return callid


def test_ended_calls_are_kept_by_count_and_by_age(vtenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "KEEP_ENDED", 3)
    calls = [ended_call(vtenant, i) for i in range(5)]
    seen = {c: vtenant.client.get(f"/sim/v1/calls/{c}") for c in calls}
    assert [seen[c].status_code for c in calls] == [404, 404, 200, 200, 200]
    assert seen[calls[-1]].json()["state"] == "ended"

    r = vtenant.client.post("/sim/v1/clock/advance", json={"seconds": core.KEEP_ENDED_SECONDS + 1})
    assert r.status_code == 200, r.text
    latest = ended_call(vtenant, 9)  # the next call to end drops every kept call past the age
    assert vtenant.client.get(f"/sim/v1/calls/{calls[-1]}").status_code == 404
    assert vtenant.client.get(f"/sim/v1/calls/{latest}").status_code == 200
