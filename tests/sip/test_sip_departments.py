"""Department calls on SIP under the conditions the load bench (bench/sip.py) hit: calls arriving together for
an EVENLY department, and a phone whose answer comes after the engine moved on from its leg."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.sip.conftest import SCENARIOS, Sipp, SipServer, free_udp_port, new_number
from tests.sip.test_sip_calls import CLIENT, PASSWORD, history, register, routed_number, set_password, wait_until

from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.server import Tenant


def employee(t: Tenant, login: str) -> None:
    r = t.client.post("/crmapi/v1/users", json={"name": f"Phone {login}", "login": login})
    assert r.status_code in (200, 201), r.text
    set_password(t, login, PASSWORD)


def department(sip: SipServer, t: Tenant, order: str, logins: list[str], **extra: Any) -> str:
    """A department of ``logins`` ringing by ``order``, and a new number routed to it."""
    r = t.client.post("/crmapi/v1/groups", json={
        "name": f"Dept {new_number()}", "call_order": order,
        "users": [{"login": login, "calls_enable": True} for login in logins], **extra})
    assert r.status_code in (200, 201), r.text
    group = str(r.json()["id"])
    return routed_number(sip, t, TelnumRouteIn(type="group", group=group, greeting=False))


def phone(sip: SipServer, t: Tenant, login: str, scenario: str, sipp: list[Sipp], talk: str = "1000",
          ring: str = "0") -> Sipp:
    port = free_udp_port()
    reg = register(sip, t, login, port=port)
    assert reg.wait() == 0, reg.output()
    device = Sipp(sip, scenario, port=port, uas=True, keys={"user": login, "talk": talk, "ring": ring})
    sipp.append(device)
    return device


def test_simultaneous_calls_to_an_evenly_department_ring_different_members(
        sip_server: SipServer, sip_tenant: Tenant, carrier_port: int, sipp: list[Sipp]) -> None:
    """Two calls arriving together both started at the member after the last answerer: that phone answered one
    and stopped ringing on the other, which then waited for its next ring slot (call_duration, here 10 s: under
    load, 30 s setups). Now the second call rings the member who is not ringing yet, and both are answered at
    once. No CRM: its ``contact`` request would space the calls out (as in the bench, where the CRM is off)."""
    logins = ["even1", "even2"]
    for login in logins:
        employee(sip_tenant, login)
    # each phone rings 500 ms before it answers: the second call is set up while the first one rings
    phones = [phone(sip_server, sip_tenant, login, "phone_answers_after_ringing.xml", sipp, ring="500")
              for login in logins]
    number = department(sip_server, sip_tenant, "EVENLY", logins, call_duration=10, timeout_time=30)
    # one sipp carrier (the fixture's port), two calls a millisecond apart
    scenario = _scenario("carrier_talk.xml", caller=CLIENT, service=number)
    try:
        done = subprocess.run(["sipp", "-sf", scenario, "-m", "2", "-r", "1000", "-l", "2", "-i", "127.0.0.1",
                               "-p", str(carrier_port), "-timeout", "30s", "-timeout_error", "-nostdin",
                               f"127.0.0.1:{sip_server.sip_port}"], capture_output=True, timeout=60, check=False)
    finally:
        Path(scenario).unlink(missing_ok=True)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-3000:]
    for p in phones:
        assert p.wait() == 0, p.output()

    def both() -> list[dict[str, Any]] | None:
        rows = [r for r in history(sip_tenant) if r["diversion"] == number]
        return rows if len(rows) >= 2 else None

    rows = wait_until(both)
    assert [r["status"] for r in rows] == ["success", "success"], rows
    assert sorted(r["user"] for r in rows) == logins, rows
    assert all(int(r["wait"]) < 5 for r in rows), rows  # both answered at once: neither waited for a next slot


def _scenario(name: str, **keys: str) -> str:
    text = (SCENARIOS / name).read_text()
    for k, v in keys.items():
        text = text.replace(f"[{k}]", v)
    f = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
    f.write(text)
    f.close()
    return f.name


def test_a_late_answer_gets_a_bye_and_the_call_goes_on(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp]) -> None:
    """BYORDER, 2 s a member: the first phone's 200 OK crosses the CANCEL that ends its slot. vpbx ACKs it and hangs
    it up (BYE), the second member rings and answers, and the caller's call is that one: answered by the second
    member, then hung up normally."""
    logins = ["late1", "late2"]
    for login in logins:
        employee(sip_tenant, login)
    late = phone(sip_server, sip_tenant, "late1", "phone_answers_late.xml", sipp)
    good = phone(sip_server, sip_tenant, "late2", "phone_answer.xml", sipp)
    number = department(sip_server, sip_tenant, "BYORDER", logins, call_duration=2, timeout_time=30)
    started = time.monotonic()
    carrier = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert late.wait() == 0, late.output()  # it got the ACK and the BYE: its late answer is not left up
    assert good.wait() == 0, good.output()
    assert time.monotonic() - started < 20
    rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
    assert rows[0]["status"] == "success" and rows[0]["user"] == "late2", rows
    assert str(crm.wait_for("history").status).lower() == "success"
