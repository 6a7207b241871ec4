"""The CRM sees no difference between a SIP call and the simulated call that follows the same path (issue 16).

Each case plays one scenario twice on the same server (SIP on loopback, real clock): once with sipp as the
carrier and the phones, once through the simulator (/sim/v1), each time on a fresh tenant with its own CRM
receiver. The ``contact``, ``event`` and ``history`` requests the CRMs receive are compared field by field,
call by call, in the order each call's requests arrived -- after replacing what differs by nature: call ids
(numbered by first appearance), times (``start``), durations within a tolerance, and the tenant's own values
(its number, its department id).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import pytest
from tests.sip.conftest import Sipp, SipServer, attach_crm, free_udp_port, new_number

from vpbx.crm.parse import decode_body
from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.services import numbers, tenancy
from vpbx.telephony.sip import sip_of
from vpbx.testing.plugin import CrmReceiver, LoopbackServer
from vpbx.testing.plugin import wait_until as plugin_wait_until
from vpbx.testing.server import Tenant, create_tenant, retire_tenant

PASSWORD = "s3cret-Phone"
CLIENT = "79101234567"
TOKEN = "crm-token"
COMMANDS = ("contact", "event", "history")
# A SIP call's talk and ring times are real (sipp pauses, retransmissions); a simulated one driven step by step
# takes milliseconds: whole seconds of ``duration``/``wait`` may differ by this much.
SECONDS_TOLERANCE = 2
TIMED = ("duration", "wait")
TALK_MS = "300"


# SIP legs run in real time beside sipp processes: a longer default wait than the plugin's.
wait_until = partial(plugin_wait_until, timeout=20)


@dataclass
class Side:
    """One run of a scenario: a fresh tenant, its CRM and the values that are its own."""

    tenant: Tenant
    crm: CrmReceiver
    served: LoopbackServer
    own: dict[str, str] = field(default_factory=dict)  # tenant-specific value -> placeholder

    def pushes(self) -> list[dict[str, Any]]:
        out = []
        for r in list(self.crm.requests):
            fields, _ = decode_body(r.body, r.headers.get("content-type") or r.headers.get("Content-Type"))
            if fields.get("cmd") in COMMANDS:
                out.append(fields)
        return out

    def histories(self) -> int:
        return sum(1 for p in self.pushes() if p.get("cmd") == "history")


@pytest.fixture
def sides(sip_server: SipServer) -> Iterator[Callable[[], Side]]:
    made: list[Side] = []
    srv = sip_server.server

    def make() -> Side:
        tenant = create_tenant(srv)
        crm, served = attach_crm(srv, tenant, TOKEN)
        side = Side(tenant, crm, served, {tenant.name: "<domain>"})
        made.append(side)
        return side

    yield make
    for side in made:
        retire_tenant(srv, side.tenant)
        side.served.stop()
    sip = sip_of(srv.runtime)
    assert sip is not None
    sip.guard.clear()  # every sipp comes from 127.0.0.1


@pytest.fixture
def sipps(sip_server: SipServer) -> Iterator[list[Sipp]]:
    started: list[Sipp] = []
    yield started
    for s in started:
        s.kill()




# --- setup shared by both runs ----------------------------------------------------------------------

def route_number(sip: SipServer, side: Side, route: TelnumRouteIn) -> str:
    number = new_number()
    srv = sip.server

    async def work() -> None:
        async with srv.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, side.tenant.name)
            await numbers.provision(s, domain, number, srv.runtime.clock.now(), name="SIP")
            await numbers.set_route(s, domain.id, number, route)
            await s.commit()

    srv.call(work())
    side.own[number] = "<number>"
    return number


def number_to_user(sip: SipServer, side: Side, login: str) -> str:
    return route_number(sip, side, TelnumRouteIn(type="user", user=login, greeting=False))


def number_to_lone_department(sip: SipServer, side: Side, login: str) -> str:
    """A number for a department whose only member is ``login``: ringing 2 s, then the busy message (5 s), then
    the call ends Missed -- the number's timeout path, short enough for a real clock."""
    r = side.tenant.client.post("/crmapi/v1/groups", json={
        "name": "Equivalence", "call_order": "ALL", "timeout": {"time": 2, "target": "msg_busy"},
        "users": [{"login": login, "calls_enable": True}]})
    assert r.status_code == 200, r.text
    group = str(r.json()["id"])
    side.own[group] = "<group>"
    return route_number(sip, side, TelnumRouteIn(type="group", group=group, greeting=False))


def ext_of(side: Side, login: str) -> str:
    users = side.tenant.client.get("/crmapi/v1/users").json()
    rows = users["items"] if isinstance(users, dict) and "items" in users else users
    return str(next(u for u in rows if u["login"] == login)["ext"])


# --- the SIP side -----------------------------------------------------------------------------------

def set_password(side: Side, login: str) -> None:
    r = side.tenant.client.put(f"/crmapi/v1/users/{login}", json={"password": PASSWORD})
    assert r.status_code == 200, r.text


def sip_phone(sip: SipServer, side: Side, login: str, scenario: str, sipps: list[Sipp],
              keys: dict[str, str] | None = None) -> Sipp:
    """``login``'s SIP phone: registered (digest), then playing ``scenario`` as the UAS it registered."""
    set_password(side, login)
    port = free_udp_port()
    reg = Sipp(sip, "register.xml", port=port, user=login, password=PASSWORD,
               keys={"user": login, "domain": side.tenant.name, "expect": "200"})
    assert reg.wait() == 0, reg.output()
    phone = Sipp(sip, scenario, port=port, uas=True, keys={"user": login, "talk": TALK_MS, **(keys or {})})
    sipps.append(phone)
    return phone


def played(*parties: Sipp) -> None:
    for p in parties:
        assert p.wait() == 0, p.output()


# --- the simulated side -----------------------------------------------------------------------------

def sim(side: Side, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    r = side.tenant.client.request(method, "/sim/v1" + path, json=body, params=params or None)
    assert r.status_code in (200, 201), (path, r.status_code, r.text)
    out: dict[str, Any] = r.json()
    return out


def sim_device(side: Side, login: str) -> None:
    sim(side, "PUT", f"/devices/{login}", {"registered": True})


def ringing(side: Side, callid: str, party: str) -> None:
    def rings() -> bool:
        legs = sim(side, "GET", f"/calls/{callid}")["legs"]
        return any(leg["party"] == party and leg["state"] == "ringing" for leg in legs)

    wait_until(rings, message=f"{party} never rang on {callid}")


# --- the comparison ---------------------------------------------------------------------------------

def normalised(side: Side) -> dict[str, list[dict[str, Any]]]:
    """The side's pushes per call (``call1``, ``call2``... by first appearance), each call's in arrival order,
    with ids and times replaced and the tenant's own values replaced by placeholders."""
    names: dict[str, str] = {}

    def call_name(callid: str) -> str:
        return names.setdefault(callid, f"call{len(names) + 1}")

    per_call: dict[str, list[dict[str, Any]]] = {}
    for push in side.pushes():
        fields = dict(push)
        callid = call_name(str(fields.pop("callid")))
        for key, value in list(fields.items()):
            if key == "second_callid" and value:
                fields[key] = call_name(str(value))
            elif key == "start":
                fields[key] = "<start>" if value else value  # present, its value a time
            elif key == "link":
                fields[key] = "<link>" if value else value
            elif isinstance(value, str):
                for own, placeholder in side.own.items():
                    value = value.replace(own, placeholder)
                fields[key] = value
        per_call.setdefault(callid, []).append(fields)
    return per_call


def assert_same_pushes(sip_side: Side, sim_side: Side) -> None:
    got_sip, got_sim = normalised(sip_side), normalised(sim_side)
    assert got_sip, "the SIP call's CRM got nothing"
    if os.environ.get("VPBX_EQUIVALENCE_SHOW"):  # debugging: what was compared
        print("SIP", got_sip, "\nSIM", got_sim)
    assert list(got_sip) == list(got_sim), f"calls: SIP {list(got_sip)} vs simulator {list(got_sim)}"
    for callid in got_sip:
        a, b = got_sip[callid], got_sim[callid]
        sequence_a = [(p["cmd"], p.get("type")) for p in a]
        sequence_b = [(p["cmd"], p.get("type")) for p in b]
        assert sequence_a == sequence_b, f"{callid}: SIP {sequence_a} vs simulator {sequence_b}"
        for n, (pa, pb) in enumerate(zip(a, b, strict=True)):
            assert_same_fields(f"{callid} push {n} ({pa['cmd']} {pa.get('type', '')})", pa, pb)


def inner_history(side: Side) -> list[dict[str, Any]]:
    def rows() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = side.tenant.client.get("/crmapi/v1/history/inner/json",
                                                          params={"period": "this_month"}).json()
        return out

    return wait_until(rows, message=f"{side.tenant.name}: no internal history")


def normalised_row(side: Side, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key, value in row.items():
        if key in ("start", "end", "id", "uid", "callid") and value:
            out[key] = f"<{key}>"
        elif key == "record" and value:
            out[key] = "<record>"
        elif isinstance(value, str):
            for own, placeholder in side.own.items():
                value = value.replace(own, placeholder)
            out[key] = value
    return out


def assert_same_fields(where: str, pa: dict[str, Any], pb: dict[str, Any]) -> None:
    assert sorted(pa) == sorted(pb), f"{where}: fields SIP {sorted(pa)} vs simulator {sorted(pb)}"
    for key in pa:
        if key in TIMED and pa[key] not in (None, "") and pb[key] not in (None, ""):
            assert abs(int(pa[key]) - int(pb[key])) <= SECONDS_TOLERANCE, (
                f"{where}: {key} SIP {pa[key]} vs simulator {pb[key]}")
        else:
            assert pa[key] == pb[key], f"{where}: {key} SIP {pa[key]!r} vs simulator {pb[key]!r}"


def settled(*sides_: Side, histories: int = 1) -> None:
    """Every side's CRM got ``histories`` history requests (the last push of a call), and every event and
    history the server logged for delivery: nothing is still on its way to be compared."""
    for side in sides_:
        def done(s: Side = side) -> bool:
            if s.histories() < histories:
                return False
            logged = sim(s, "GET", "/deliveries", None, limit=1000)["items"]
            received = sum(1 for p in s.pushes() if p.get("cmd") in ("event", "history"))
            return all(d["state"] == "delivered" for d in logged) and received == sum(
                1 for d in logged if d["command"] in ("event", "history"))

        wait_until(done, timeout=30, message=f"{side.tenant.name}: {side.histories()} histories, expected "
                                             f"{histories}, or deliveries still pending")


# --- the paths ---------------------------------------------------------------------------------------

def test_incoming_answered_caller_hangs_up(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                           sipps: list[Sipp]) -> None:
    sip_side = sides()
    number = number_to_user(sip_server, sip_side, "admin")
    phone = sip_phone(sip_server, sip_side, "admin", "equivalence_phone_answers_until_bye.xml", sipps)
    caller = Sipp(sip_server, "carrier_hangs_up.xml", port=carrier_port,
                  keys={"caller": CLIENT, "service": number, "talk": TALK_MS})
    sipps.append(caller)
    played(caller, phone)

    sim_side = sides()
    number = number_to_user(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    callid = sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/answer", {"user": "admin"})
    sim(sim_side, "POST", f"/calls/{callid}/hangup", {"by": "client"})

    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_incoming_not_answered_is_missed(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                         sipps: list[Sipp]) -> None:
    sip_side = sides()
    number = number_to_lone_department(sip_server, sip_side, "admin")
    phone = sip_phone(sip_server, sip_side, "admin", "phone_ring_cancelled.xml", sipps)
    # After the department's timeout vpbx answers the caller to play the busy message, then hangs up.
    caller = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipps.append(caller)

    sim_side = sides()
    number = number_to_lone_department(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})

    played(caller, phone)
    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_incoming_employee_busy(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                sipps: list[Sipp]) -> None:
    sip_side = sides()
    number = number_to_lone_department(sip_server, sip_side, "admin")
    phone = sip_phone(sip_server, sip_side, "admin", "far_end_refuses.xml", sipps, keys={"code": "486"})
    caller = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipps.append(caller)

    sim_side = sides()
    number = number_to_lone_department(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    callid = sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/reject", {"user": "admin"})

    played(phone, caller)
    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_outgoing_through_the_carrier_answered(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                               sipps: list[Sipp]) -> None:
    sip_side = sides()
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": TALK_MS})
    sipps.append(far)
    set_password(sip_side, "manager")
    caller = Sipp(sip_server, "phone_call_talk.xml", user="manager", password=PASSWORD,
                  keys={"user": "manager", "domain": sip_side.tenant.name, "service": CLIENT})
    sipps.append(caller)
    played(caller, far)

    sim_side = sides()
    callid = sim(sim_side, "POST", "/calls", {"from": "user:manager", "to": CLIENT})["callid"]
    ringing(sim_side, callid, f"ext:{CLIENT}")
    sim(sim_side, "POST", f"/calls/{callid}/answer", {})
    sim(sim_side, "POST", f"/calls/{callid}/hangup", {"by": "client"})

    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_internal_call_between_employees(sip_server: SipServer, sides: Callable[[], Side],
                                         sipps: list[Sipp]) -> None:
    sip_side = sides()
    ext = ext_of(sip_side, "admin")
    admin = sip_phone(sip_server, sip_side, "admin", "phone_answer.xml", sipps)  # answers, hangs up after talk
    set_password(sip_side, "manager")
    caller = Sipp(sip_server, "phone_call_talk.xml", user="manager", password=PASSWORD,
                  keys={"user": "manager", "domain": sip_side.tenant.name, "service": ext})
    sipps.append(caller)
    played(caller, admin)

    sim_side = sides()
    assert ext_of(sim_side, "admin") == ext
    sim_device(sim_side, "admin")
    callid = sim(sim_side, "POST", "/calls", {"from": "user:manager", "to": f"user:{ext}"})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/answer", {"user": "admin"})
    sim(sim_side, "POST", f"/calls/{callid}/hangup", {"by": "admin"})

    # An internal call leaves internal history only (call-flows: "no CRM requests"): the same rows on both sides,
    # and nothing for either CRM.
    rows_sip, rows_sim = inner_history(sip_side), inner_history(sim_side)
    assert len(rows_sip) == len(rows_sim) == 1, (rows_sip, rows_sim)
    assert_same_fields("internal history", normalised_row(sip_side, rows_sip[0]), normalised_row(sim_side, rows_sim[0]))
    for side in (sip_side, sim_side):
        queued = sim(side, "GET", "/deliveries")
        assert queued["items"] == [], queued
        assert side.pushes() == []


# --- more paths: the caller giving up, a busy outside number, a blind transfer from the phone -----------

def test_incoming_caller_gives_up_while_ringing(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                                sipps: list[Sipp]) -> None:
    sip_side = sides()
    number = number_to_user(sip_server, sip_side, "admin")
    phone = sip_phone(sip_server, sip_side, "admin", "phone_ring_cancelled.xml", sipps)
    caller = Sipp(sip_server, "carrier_cancels.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipps.append(caller)
    played(caller, phone)

    sim_side = sides()
    number = number_to_user(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    callid = sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/hangup", {"by": "client"})

    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_outgoing_outside_number_busy(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                      sipps: list[Sipp]) -> None:
    sip_side = sides()
    far = Sipp(sip_server, "far_end_refuses.xml", port=carrier_port, uas=True, keys={"code": "486"})
    sipps.append(far)
    set_password(sip_side, "manager")
    caller = Sipp(sip_server, "phone_call_refused.xml", user="manager", password=PASSWORD,
                  keys={"user": "manager", "domain": sip_side.tenant.name, "service": CLIENT, "expect": "486"})
    sipps.append(caller)
    played(caller, far)

    sim_side = sides()
    callid = sim(sim_side, "POST", "/calls", {"from": "user:manager", "to": CLIENT})["callid"]
    ringing(sim_side, callid, f"ext:{CLIENT}")
    sim(sim_side, "POST", f"/calls/{callid}/reject", {"reason": "busy"})

    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


def test_incoming_transferred_blind_by_the_phone(sip_server: SipServer, sides: Callable[[], Side], carrier_port: int,
                                                 sipps: list[Sipp]) -> None:
    sip_side = sides()
    target = ext_of(sip_side, "manager")
    number = number_to_user(sip_server, sip_side, "admin")
    admin = sip_phone(sip_server, sip_side, "admin", "phone_refers.xml", sipps,
                      keys={"referto": target, "domain": sip_side.tenant.name})
    manager = sip_phone(sip_server, sip_side, "manager", "phone_answer.xml", sipps)  # answers, hangs up
    caller = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipps.append(caller)
    played(caller, admin, manager)

    sim_side = sides()
    number = number_to_user(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    sim_device(sim_side, "manager")
    callid = sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/answer", {"user": "admin"})
    second = sim(sim_side, "POST", f"/calls/{callid}/transfer",
                 {"user": "admin", "to": target, "mode": "blind"})["callid"]
    ringing(sim_side, second, "manager")
    sim(sim_side, "POST", f"/calls/{second}/answer", {"user": "manager"})
    sim(sim_side, "POST", f"/calls/{second}/hangup", {"by": "manager"})

    settled(sip_side, sim_side, histories=2)  # admin's part, then the client's call with manager
    assert_same_pushes(sip_side, sim_side)


def test_personal_number_employee_busy_then_caller_gives_up(sip_server: SipServer, sides: Callable[[], Side],
                                                             carrier_port: int, sipps: list[Sipp]) -> None:
    """A number routed to the employee alone: the phone declines (486), the call goes on to voicemail (vpbx
    answers the caller for its prompt), and the caller hangs up there."""
    sip_side = sides()
    number = number_to_user(sip_server, sip_side, "admin")
    phone = sip_phone(sip_server, sip_side, "admin", "equivalence_phone_rings_then_busy.xml", sipps)
    caller = Sipp(sip_server, "carrier_media_bye.xml", port=carrier_port,
                  keys={"caller": CLIENT, "service": number, "talk": "1500", "aport": "9", "portfile": "/dev/null"})
    sipps.append(caller)
    played(phone, caller)

    sim_side = sides()
    number = number_to_user(sip_server, sim_side, "admin")
    sim_device(sim_side, "admin")
    callid = sim(sim_side, "POST", "/calls", {"from": CLIENT, "to": number})["callid"]
    ringing(sim_side, callid, "admin")
    sim(sim_side, "POST", f"/calls/{callid}/reject", {"user": "admin"})
    assert sim(sim_side, "GET", f"/calls/{callid}")["state"] == "voicemail"
    sim(sim_side, "POST", f"/calls/{callid}/hangup", {"by": "client"})

    settled(sip_side, sim_side)
    assert_same_pushes(sip_side, sim_side)


# --- the comparison itself is not vacuous ------------------------------------------------------------

@dataclass
class Canned(Side):
    canned: list[dict[str, Any]] = field(default_factory=list)

    def pushes(self) -> list[dict[str, Any]]:
        return self.canned


def canned(*pushes: dict[str, Any]) -> Side:
    return Canned(cast(Tenant, None), cast(CrmReceiver, None), cast(LoopbackServer, None),
                  {"74990000001": "<number>"}, list(pushes))


def test_the_comparison_ignores_ids_and_times_and_catches_the_rest() -> None:
    def call(callid: str, number: str, **changes: Any) -> list[dict[str, Any]]:
        base = [{"cmd": "contact", "phone": CLIENT, "callid": callid, "diversion": number},
                {"cmd": "event", "type": "INCOMING", "callid": callid, "user": "admin", "diversion": number},
                {"cmd": "history", "type": "in", "callid": callid, "user": "admin", "start": "20261205T050000Z",
                 "duration": "1", "status": "Success", "diversion": number}]
        base[-1].update(changes)
        return base

    reference = canned(*call("a1", "74990000001"))
    other = Canned(**{**reference.__dict__, "own": {"74990000002": "<number>"}})
    other.canned = call("b2", "74990000002", start="20261205T050107Z", duration="3")
    assert_same_pushes(reference, other)  # other ids, times, numbers of its own; duration within tolerance
    for changes, word in (({"user": "manager"}, "user"), ({"duration": "4"}, "duration"),
                          ({"status": "Missed"}, "status"), ({"link": "x"}, "fields")):
        other.canned = call("b2", "74990000002", **changes)
        with pytest.raises(AssertionError, match=word):
            assert_same_pushes(reference, other)
    other.canned = [call("b2", "74990000002")[i] for i in (1, 0, 2)]  # the same pushes, another order
    with pytest.raises(AssertionError, match="contact"):
        assert_same_pushes(reference, other)
