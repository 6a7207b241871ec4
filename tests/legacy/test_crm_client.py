"""A CRM that speaks only the legacy command API, against a working PBX: it lists employees and
departments, switches an employee's subscription and another's DND, and the calls the simulator
plays then ring accordingly; afterwards the CRM pulls today's history and finds them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.legacy.client import LegacyClient

from vpbx.testing.server import Tenant

NUMBER = "74951234567"  # the demo company's main number: routed to sales (BYORDER admin, manager, ivan, maria)
CLIENT = "79101234567"


def sim(t: Tenant, method: str, path: str, **body: Any) -> dict[str, Any]:
    r = t.client.request(method, f"/sim/v1{path}", json=body or None)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def ringing(t: Tenant, callid: str) -> list[str]:
    return [leg["party"] for leg in sim(t, "GET", f"/calls/{callid}")["legs"] if leg["state"] == "ringing"]


@pytest.fixture
def phones(ltenant: Tenant) -> Tenant:
    for login in ("admin", "manager", "ivan", "maria"):
        sim(ltenant, "PUT", f"/devices/{login}", registered=True)
    return ltenant


def test_crm_client_day(phones: Tenant, crm: LegacyClient) -> None:
    t = phones
    staff = {a["name"]: a for a in crm.accounts()}
    assert {"admin", "manager", "ivan", "maria"} <= set(staff) and staff["ivan"]["ext"] == "707"
    sales = next(g for g in crm.groups() if g["realName"] == "Отдел продаж")
    assert crm.groups("ivan") == [sales]

    # The CRM takes admin off the sales line and puts manager on do-not-disturb.
    crm.subscribe_on_calls("admin", False, sales["id"])
    crm.set_dnd("manager", True)
    assert crm.subscription_status("admin", sales["id"]) is False and crm.get_dnd("manager") is True

    # A client calls: sales rings in list order, skipping both.
    answered = sim(t, "POST", "/calls", **{"from": CLIENT, "to": NUMBER})["callid"]
    assert ringing(t, answered) == ["ivan"]
    sim(t, "POST", f"/calls/{answered}/answer", user="ivan")
    sim(t, "POST", "/clock/advance", seconds=42)
    assert sim(t, "POST", f"/calls/{answered}/hangup", by="client")["status"] == "Success"

    # A second client gives up while maria's phone rings (ivan does not answer in time).
    missed = sim(t, "POST", "/calls", **{"from": "79990000001", "to": NUMBER})["callid"]
    assert ringing(t, missed) == ["ivan"]
    sim(t, "POST", "/clock/advance", seconds=10)  # the demo's call_duration: next member
    assert ringing(t, missed) == ["maria"]
    sim(t, "POST", f"/calls/{missed}/hangup", by="client")

    # Back to normal: admin in every department again, manager reachable; the next call rings admin.
    crm.subscribe_on_calls("admin", True)
    crm.set_dnd("manager", False)
    third = sim(t, "POST", "/calls", **{"from": "79990000002", "to": NUMBER})["callid"]
    assert ringing(t, third) == ["admin"]
    sim(t, "POST", f"/calls/{third}/hangup", by="client")

    rows = {row.uid: row for row in crm.history(period="today")}
    assert set(rows) == {answered, missed, third}
    row = rows[answered]
    assert (row.type, row.client, row.account, row.via, row.duration) == ("in", CLIENT, f"ivan@{t.name}", NUMBER, 42)
    assert row.start.endswith("Z") and row.extra == ()
    assert httpx.get(row.record, timeout=30).status_code == 200  # the recording opens without a key
    assert rows[missed].type == "missed" and rows[missed].client == "79990000001"
    assert rows[missed].account.endswith(f"@{t.name}") and rows[missed].duration == 0
    assert [r.uid for r in crm.history(period="today", type="missed")] == [third, missed]
    assert [r.uid for r in crm.history(period="today", limit="1")] == [third]
