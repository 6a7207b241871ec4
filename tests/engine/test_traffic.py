"""Generated traffic (``/sim/v1/traffic``): Poisson arrivals on the virtual clock, reproducible by seed, counts
that add up, devices on automatic behaviour for the run and given back after it, stop, one run per domain,
validation; and one short run in real time."""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from typing import Any

import pytest

from vpbx.domain.phone import normalize_number, region_of
from vpbx.engine.traffic import arrivals, client_numbers
from vpbx.services import tenancy
from vpbx.telephony.sim import Auto, SimTelephony
from vpbx.testing.server import ServerThread, Tenant

NUMBERS = ["74951234567", "74957654321", "78121234567"]  # the demo company's numbers


def advance(t: Tenant, seconds: float) -> None:
    r = t.client.post("/sim/v1/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text


def status(t: Tenant, **params: Any) -> dict[str, Any]:
    r = t.client.get("/sim/v1/traffic", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def adds_up(s: dict[str, Any]) -> bool:
    return bool(s["placed"] == s["answered"] + s["missed"] + s["live"])


def start(t: Tenant, **body: Any) -> dict[str, Any]:
    r = t.client.post("/sim/v1/traffic", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def run_to_end(t: Tenant, step: float = 60, limit: int = 200) -> list[dict[str, Any]]:
    """Advance the virtual clock until the run is over; the statuses seen on the way."""
    seen = []
    for _ in range(limit):
        advance(t, step)
        s = status(t)
        seen.append(s)
        if s["state"] != "running":
            return seen
    raise AssertionError(f"the run did not end: {seen[-1]}")


def domain_id(server: ServerThread, t: Tenant) -> int:
    async def work() -> int:
        async with server.runtime.sessions() as session:
            return (await tenancy.get_domain(session, t.name)).id

    return server.call(work())


def sim(server: ServerThread) -> SimTelephony:
    telephony = server.runtime.telephony
    assert isinstance(telephony, SimTelephony)
    return telephony


# --- the pure parts ----------------------------------------------------------------------------------------


def test_arrivals_are_a_poisson_process_of_the_rate() -> None:
    cpm, hours = 120, 10
    times = list(arrivals(cpm, hours * 3600, random.Random(7)))
    expected = cpm * 60 * hours  # 72 000; the count's standard deviation is its square root, about 268
    assert abs(len(times) - expected) < 4 * expected ** 0.5
    assert times == sorted(times) and 0 < times[0] and times[-1] < hours * 3600
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(60 / cpm, rel=0.02)
    assert statistics.stdev(gaps) == pytest.approx(60 / cpm, rel=0.03)  # exponential: sd = mean
    per_minute = Counter(int(t // 60) for t in times)
    counts = [per_minute.get(m, 0) for m in range(hours * 60)]
    mean = statistics.fmean(counts)
    assert mean == pytest.approx(cpm, rel=0.02)
    assert statistics.pvariance(counts) / mean == pytest.approx(1.0, abs=0.15)  # Poisson: variance = mean
    assert list(arrivals(cpm, 600, random.Random(7))) == [t for t in times if t < 600]  # the seed decides


def test_clients_are_distinct_valid_russian_mobiles() -> None:
    numbers = client_numbers(random.Random(1), 500)
    assert len(set(numbers)) == 500
    for n in numbers:
        assert normalize_number(n) == n and n.startswith("79") and len(n) == 11
        assert region_of(n) == "RU"
    assert client_numbers(random.Random(1), 500) == numbers


# --- on the virtual clock -------------------------------------------------------------------------------


def test_same_seed_same_calls_and_outcomes(vserver: ServerThread) -> None:
    from vpbx.testing.server import create_tenant

    body = {"calls_per_minute": 20, "duration_s": 600, "seed": 7, "clients": 15, "outgoing_share": 0.2,
            "patience": [20, 90]}
    runs = []
    for _ in range(2):  # two fresh domains with the same company
        t = create_tenant(vserver)
        try:
            first = start(t, **body)
            assert first["state"] == "running" and first["seed"] == 7 and first["placed"] == 0
            assert first["config"]["numbers"] == NUMBERS
            seen = run_to_end(t)
            assert all(adds_up(s) for s in seen), seen
            final = status(t, calls="true")
            runs.append(final)
        finally:
            t.client.close()
    a, b = runs
    assert a["state"] == b["state"] == "done" and a["live"] == 0
    calls_a = [{k: v for k, v in c.items() if k != "callid"} for c in a["calls"]]
    calls_b = [{k: v for k, v in c.items() if k != "callid"} for c in b["calls"]]
    assert calls_a == calls_b
    assert {k: a[k] for k in ("placed", "answered", "missed", "outgoing")} == \
        {k: b[k] for k in ("placed", "answered", "missed", "outgoing")}
    # the run did something worth comparing: answered and missed calls, both directions, repeat callers
    assert a["answered"] > 5 and a["missed"] > 5 and 0 < a["outgoing"] < a["placed"]
    assert {c["kind"] for c in a["calls"]} == {"incoming", "outgoing"}
    assert {c["status"] for c in a["calls"]} >= {"Success", "Missed"}
    incoming = [c for c in a["calls"] if c["kind"] == "incoming"]
    assert {c["to"] for c in incoming} <= set(NUMBERS)
    assert len({c["from"] for c in incoming}) < len(incoming)
    assert a["placed"] == len(a["calls"]) and not a["calls_truncated"]
    ats = [c["at"] for c in a["calls"]]
    assert ats == sorted(ats) and ats[-1] < 600


def test_another_seed_other_calls(vtenant: Tenant) -> None:
    start(vtenant, calls_per_minute=20, duration_s=120, seed=1)
    run_to_end(vtenant)
    one = [(c["at"], c["from"]) for c in status(vtenant, calls="true")["calls"]]
    start(vtenant, calls_per_minute=20, duration_s=120, seed=2)
    run_to_end(vtenant)
    two = [(c["at"], c["from"]) for c in status(vtenant, calls="true")["calls"]]
    assert one and two and one != two


def test_the_rate_follows_calls_per_minute_over_a_long_run(vtenant: Tenant) -> None:
    cpm, duration = 60, 1800  # 1 800 calls expected; the count's standard deviation is about 42
    start(vtenant, calls_per_minute=cpm, duration_s=duration, seed=11, answer_after=[1, 3], talk=[5, 30])
    seen = run_to_end(vtenant, step=300)
    done = seen[-1]
    assert done["state"] == "done" and done["live"] == 0 and adds_up(done)
    assert abs(done["placed"] - cpm * duration / 60) < 4 * (cpm * duration / 60) ** 0.5
    middle = [s for s in seen if s["placing"]]
    for s in middle:  # along the way the count keeps to the rate too (elapsed minutes x cpm, within 5 sd)
        expected = cpm * s["elapsed_s"] / 60
        assert abs(s["placed"] - expected) < 5 * expected ** 0.5 + 5
    calls = status(vtenant, calls="true")["calls"]
    per_number = Counter(c["to"] for c in calls)
    assert set(per_number) == set(NUMBERS)
    assert min(per_number.values()) > done["placed"] / 3 * 0.8  # numbers are picked uniformly


def test_devices_answer_for_the_run_and_get_their_behaviour_back(vserver: ServerThread, vtenant: Tenant) -> None:
    d = domain_id(vserver, vtenant)
    phones = sim(vserver)
    assert vtenant.client.put("/sim/v1/devices/admin", json={
        "registered": True, "auto": {"action": "reject", "after": 1}}).status_code == 200
    assert not phones.is_registered(d, "maria")
    start(vtenant, calls_per_minute=30, duration_s=120, seed=5, users=["admin", "708"], numbers=["74951234567"],
          answer_probability=1, answer_after=[2, 4], talk=[10, 20])
    assert phones.is_registered(d, "maria") and phones.is_registered(d, "admin")
    for login in ("admin", "maria"):
        auto = phones.auto_of(d, login)
        assert auto is not None and auto.action == "answer" and 2 <= auto.after <= 4
        assert auto.talk is not None and 10 <= auto.talk <= 20
    assert phones.auto_of(d, "manager") is None and not phones.is_registered(d, "manager")  # not in the run
    advance(vtenant, 30)
    s = status(vtenant, calls="true")
    answered_by = {c["answered_by"] for c in s["calls"] if c["answered_by"]}
    # sales rings admin, manager, ivan, maria in turn: manager has no phone; ivan's mobile (redirect on, no
    # device) is an outside number, which answers by default
    assert answered_by & {"admin", "maria"} and answered_by <= {"admin", "maria", "ivan"}
    done = run_to_end(vtenant)[-1]
    assert done["state"] == "done" and done["answered"] > 0 and adds_up(done)
    assert done["config"]["users"] == ["admin", "maria"] and done["config"]["numbers"] == ["74951234567"]
    assert phones.is_registered(d, "admin") and phones.auto_of(d, "admin") == Auto("reject", 1, None)
    assert not phones.is_registered(d, "maria") and phones.auto_of(d, "maria") is None


def test_outgoing_calls_and_the_clients_behaviour_given_back(vserver: ServerThread, vtenant: Tenant) -> None:
    d = domain_id(vserver, vtenant)
    start(vtenant, calls_per_minute=10, duration_s=300, seed=3, outgoing_share=1, clients=5, answer_probability=0.5)
    advance(vtenant, 120)
    s = status(vtenant, calls="true")
    assert s["placed"] > 0 and s["outgoing"] == s["placed"]
    assert all(c["kind"] == "outgoing" and c["from"] in s["config"]["users"] for c in s["calls"])
    clients = {c["to"] for c in s["calls"]}
    assert any(sim(vserver).external_of(d, c).action in ("answer", "busy") for c in clients)
    done = run_to_end(vtenant)[-1]
    statuses = {c["status"] for c in status(vtenant, calls="true")["calls"]}
    assert done["answered"] > 0 and "Busy" in statuses and adds_up(done)
    for c in clients:
        assert sim(vserver).external_of(d, c) == Auto("answer", 3.0, 30.0)  # the default again


def test_stop_ends_the_run_and_live_calls_finish(vserver: ServerThread, vtenant: Tenant) -> None:
    d = domain_id(vserver, vtenant)
    start(vtenant, calls_per_minute=60, duration_s=3600, seed=9, talk=[100, 200])
    advance(vtenant, 120)
    before = status(vtenant)
    assert before["state"] == "running" and before["live"] > 0
    r = vtenant.client.delete("/sim/v1/traffic")
    assert r.status_code == 200, r.text
    stopped = r.json()
    assert stopped["state"] == "stopped" and not stopped["placing"] and stopped["ended"]
    assert stopped["live"] > 0 and adds_up(stopped)
    assert sim(vserver).auto_of(d, "admin") is None and not sim(vserver).is_registered(d, "admin")  # given back
    advance(vtenant, 600)
    after = status(vtenant)
    assert after["state"] == "stopped" and after["placed"] == stopped["placed"]  # nothing more placed
    assert after["live"] == 0 and after["answered"] + after["missed"] == after["placed"]
    assert after["elapsed_s"] == stopped["elapsed_s"]
    assert vtenant.client.get("/sim/v1/calls").json() == []
    # stopping again changes nothing; a new run may start
    assert vtenant.client.delete("/sim/v1/traffic").json()["state"] == "stopped"
    assert start(vtenant, calls_per_minute=1, duration_s=60, seed=1)["state"] == "running"
    vtenant.client.delete("/sim/v1/traffic")


def test_one_run_per_domain(vserver: ServerThread, vtenant: Tenant) -> None:
    from vpbx.testing.server import create_tenant

    start(vtenant, calls_per_minute=6, duration_s=60, seed=1)
    r = vtenant.client.post("/sim/v1/traffic", json={"calls_per_minute": 6, "duration_s": 60})
    assert r.status_code == 409 and r.json() == {"message": "A traffic run is already running on this domain"}
    other = create_tenant(vserver)  # another domain has its own run
    try:
        assert other.client.post("/sim/v1/traffic", json={"calls_per_minute": 6, "duration_s": 60}).status_code == 201
        other.client.delete("/sim/v1/traffic")
    finally:
        other.client.close()
    run_to_end(vtenant)
    assert start(vtenant, calls_per_minute=6, duration_s=60)["seed"] >= 0  # done: the next one may start
    vtenant.client.delete("/sim/v1/traffic")


@pytest.mark.parametrize(("body", "field"), [
    ({"duration_s": 60}, "calls_per_minute"),
    ({"calls_per_minute": 0, "duration_s": 60}, "calls_per_minute"),
    ({"calls_per_minute": 10, "duration_s": -1}, "duration_s"),
    ({"calls_per_minute": 10}, "duration_s"),
    ({"calls_per_minute": "many", "duration_s": 60}, "calls_per_minute"),
    ({"calls_per_minute": 10, "duration_s": 60, "cpm": 5}, "cpm"),
    ({"calls_per_minute": 10, "duration_s": 60, "answer_probability": 1.5}, "answer_probability"),
    ({"calls_per_minute": 10, "duration_s": 60, "answer_after": [5, 2]}, "answer_after"),
    ({"calls_per_minute": 10, "duration_s": 60, "talk": [1]}, "talk"),
    ({"calls_per_minute": 10, "duration_s": 60, "seed": -1}, "seed"),
    ({"calls_per_minute": 10, "duration_s": 60, "numbers": []}, "numbers"),
    ({"calls_per_minute": 10, "duration_s": 60, "numbers": ["74990000000"]}, "numbers.0"),
    ({"calls_per_minute": 10, "duration_s": 60, "numbers": ["74951234567", "call me"]}, "numbers.1"),
    ({"calls_per_minute": 10, "duration_s": 60, "users": ["nobody"]}, "users.0"),
])
def test_validation_errors(vtenant: Tenant, body: dict[str, Any], field: str) -> None:
    r = vtenant.client.post("/sim/v1/traffic", json=body)
    assert r.status_code == 400, r.text
    out = r.json()
    assert out["message"] == "Validation error"
    assert field in [e["field"] for e in out["errors"]], out
    assert vtenant.client.get("/sim/v1/traffic").status_code == 404  # nothing started


def test_no_run_and_no_key(vserver: ServerThread, vtenant: Tenant) -> None:
    assert vtenant.client.get("/sim/v1/traffic").json() == {"message": "Not found"}
    assert vtenant.client.delete("/sim/v1/traffic").status_code == 404
    import httpx

    r = httpx.post(f"{vserver.url}/sim/v1/traffic", json={"calls_per_minute": 1, "duration_s": 1})
    assert r.status_code == 401


def test_a_domain_without_numbers(vserver: ServerThread) -> None:
    from vpbx.testing.server import create_tenant

    bare = create_tenant(vserver, demo_data=False)
    try:
        r = bare.client.post("/sim/v1/traffic", json={"calls_per_minute": 10, "duration_s": 60})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "numbers"
    finally:
        bare.client.close()


# --- on the real clock ------------------------------------------------------------------------------------


def test_a_short_run_in_real_time(tenant: Tenant) -> None:
    r = tenant.client.post("/sim/v1/traffic", json={
        "calls_per_minute": 240, "duration_s": 1.5, "seed": 4, "numbers": ["74951234567"],
        "answer_probability": 1, "answer_after": [0.05, 0.1], "talk": [0.1, 0.2], "patience": [0.5, 0.5]})
    assert r.status_code == 201, r.text
    began = time.monotonic()
    s = r.json()
    while s["state"] == "running" and time.monotonic() - began < 20:
        assert adds_up(s)
        time.sleep(0.1)
        s = tenant.client.get("/sim/v1/traffic").json()
    assert s["state"] == "done", s
    assert time.monotonic() - began >= 1.4  # real time: the run lasted its duration
    assert s["placed"] > 0 and s["live"] == 0 and s["answered"] > 0 and adds_up(s)
    assert 1.5 <= s["elapsed_s"] < 10
