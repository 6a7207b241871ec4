"""SIP telephony end to end on loopback: sipp phones register with digest auth, sipp carriers place calls that
the engine routes to the phones; the CRM receives what it receives for a simulated call."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from tests.sip.conftest import Sipp, SipServer, free_udp_port, new_number

from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.services import numbers, tenancy
from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.plugin import wait_until as plugin_wait_until
from vpbx.testing.server import Tenant

PASSWORD = "s3cret-Phone"
CLIENT = "79101234567"


# SIP legs run in real time beside sipp processes: a longer default wait than the plugin's.
wait_until = partial(plugin_wait_until, timeout=15)


def user(t: Tenant, login: str) -> dict[str, Any]:
    users = t.client.get("/crmapi/v1/users", params={"with": "status"}).json()
    rows = users["items"] if isinstance(users, dict) and "items" in users else users
    found: dict[str, Any] = next(u for u in rows if u["login"] == login)
    return found


def status_of(t: Tenant, login: str) -> str:
    return str(user(t, login)["status"])


def registered(t: Tenant, login: str, phone: Sipp) -> None:
    try:
        wait_until(lambda: status_of(t, login) == "online" or phone.proc.poll() is not None)
    finally:
        if status_of(t, login) != "online":
            phone.kill()
            raise AssertionError(f"the phone did not register: {phone.output()}")


def set_password(t: Tenant, login: str, password: str = PASSWORD) -> None:
    r = t.client.put(f"/crmapi/v1/users/{login}", json={"password": password})
    assert r.status_code == 200, r.text


def register(sip: SipServer, t: Tenant, user: str, password: str = PASSWORD, expect: str = "200",
             port: int | None = None) -> Sipp:
    return Sipp(sip, "register.xml", port=port, user=user, password=password,
                keys={"user": user, "domain": t.name, "expect": expect})


# --- registration ------------------------------------------------------------------------------------

def test_register_challenge_then_online(sip_server: SipServer, sip_tenant: Tenant) -> None:
    set_password(sip_tenant, "admin")
    assert status_of(sip_tenant, "admin") == "offline"
    phone = register(sip_server, sip_tenant, "admin")
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "admin") == "online"


def test_register_by_extension(sip_server: SipServer, sip_tenant: Tenant) -> None:
    set_password(sip_tenant, "manager")
    ext = user(sip_tenant, "manager")["ext"]
    phone = register(sip_server, sip_tenant, str(ext))
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "manager") == "online"


def test_wrong_password_is_403_and_blocks(sip_server: SipServer, sip_tenant: Tenant) -> None:
    set_password(sip_tenant, "ivan")
    port = free_udp_port()
    for _ in range(5):  # the server's limit in these tests: 5 failures a minute
        bad = register(sip_server, sip_tenant, "ivan", password="wrong", expect="403", port=port)
        assert bad.wait() == 0, bad.output()
    # Blocked now: even the right password is refused from that source.
    blocked = register(sip_server, sip_tenant, "ivan", expect="403", port=port)
    assert blocked.wait() != 0  # no 401 challenge any more: a 403 straight away
    assert status_of(sip_tenant, "ivan") == "offline"


def test_no_sip_password_no_registration(sip_server: SipServer, sip_tenant: Tenant) -> None:
    phone = register(sip_server, sip_tenant, "maria", expect="403")  # maria's password was generated, unknown
    assert phone.wait() == 0, phone.output()


# --- calls from a carrier ---------------------------------------------------------------------------

def number_to(sip: SipServer, t: Tenant, login: str) -> str:
    return routed_number(sip, t, TelnumRouteIn(type="user", user=login, greeting=False))


def routed_number(sip: SipServer, t: Tenant, route: TelnumRouteIn) -> str:
    """A new number of the tenant's, provisioned with ``route``."""
    number = new_number()
    srv = sip.server

    async def work() -> None:
        async with srv.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            await numbers.provision(s, domain, number, srv.runtime.clock.now(), name="SIP")
            await numbers.set_route(s, domain.id, number, route)
            await s.commit()

    srv.call(work())
    return number


def history(t: Tenant) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = t.client.get("/crmapi/v1/history/json", params={
        "period": "this_month", "processMissed": "1"}).json()
    return rows


def test_carrier_call_rings_the_phone_which_answers(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                     carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    number = number_to(sip_server, sip_tenant, "admin")
    port = free_udp_port()
    reg = register(sip_server, sip_tenant, "admin", port=port)
    assert reg.wait() == 0, reg.output()
    assert status_of(sip_tenant, "admin") == "online"
    phone = Sipp(sip_server, "phone_answer.xml", port=port, uas=True, keys={"user": "admin", "talk": "1000"})
    sipp.append(phone)
    carrier = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert phone.wait() == 0, phone.output()
    pushed = crm.wait_for("history")
    assert pushed.status.lower() == "success" or str(pushed.status).lower().endswith("success")
    assert crm.notices("contact")  # the CRM was asked who calls, as for a simulated call
    kinds = [str(n.type).upper() for n in crm.notices("event")]
    assert kinds[:2] == ["INCOMING", "ACCEPTED"] and "COMPLETED" in kinds, kinds
    rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
    assert rows[0]["status"] == "success" and rows[0]["user"] == "admin", rows


def test_unknown_number_is_404(sip_server: SipServer, sip_tenant: Tenant, carrier_port: int,
                               sipp: list[Sipp]) -> None:
    carrier = Sipp(sip_server, "carrier_call.xml", port=carrier_port,
                   keys={"caller": CLIENT, "service": new_number(), "expect": "404"})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()


def test_untrusted_source_is_refused(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    number = number_to(sip_server, sip_tenant, "admin")
    stranger = Sipp(sip_server, "carrier_call.xml", keys={"caller": CLIENT, "service": number, "expect": "401"})
    sipp.append(stranger)
    assert stranger.wait() == 0, stranger.output()  # challenged: only a phone with credentials may call


# --- calls from phones -----------------------------------------------------------------------------

def phone_dials(sip: SipServer, t: Tenant, login: str, number: str, *, expect: str = "",
                password: str = PASSWORD) -> Sipp:
    keys = {"user": login, "domain": t.name, "service": number}
    if expect:
        return Sipp(sip, "phone_call_refused.xml", user=login, password=password, keys={**keys, "expect": expect})
    return Sipp(sip, "phone_call_talk.xml", user=login, password=password, keys=keys)


def online_phone(sip: SipServer, t: Tenant, login: str, sipp: list[Sipp], talk: str = "500") -> Sipp:
    """``login``'s phone: registered (digest), then answering the next call and hanging up after ``talk`` ms."""
    set_password(t, login)
    port = free_udp_port()
    reg = register(sip, t, login, port=port)
    assert reg.wait() == 0, reg.output()
    phone = Sipp(sip, "phone_answer.xml", port=port, uas=True, keys={"user": login, "talk": talk})
    sipp.append(phone)
    return phone


def test_internal_call_by_extension(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    admin = online_phone(sip_server, sip_tenant, "admin", sipp)
    set_password(sip_tenant, "manager")
    ext = str(user(sip_tenant, "admin")["ext"])
    caller = phone_dials(sip_server, sip_tenant, "manager", ext)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert admin.wait() == 0, admin.output()


def test_phone_with_wrong_password_is_403(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT, expect="403", password="wrong")
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()


def test_outside_call_through_the_carrier(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                          carrier_port: int, sipp: list[Sipp]) -> None:
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": "500"})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert far.wait() == 0, far.output()
    pushed = crm.wait_for("history")
    assert str(pushed.status).lower() == "success" and str(pushed.type).lower() == "out", pushed
    kinds = [str(n.type).upper() for n in crm.notices("event")]
    assert kinds == ["OUTGOING", "ACCEPTED", "COMPLETED"], kinds


@pytest.mark.parametrize(("code", "status"), [("486", "busy"), ("480", "notavailable"), ("404", "notfound")])
def test_far_end_refusals_map_to_statuses(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                          carrier_port: int, sipp: list[Sipp], code: str, status: str) -> None:
    far = Sipp(sip_server, "far_end_refuses.xml", port=carrier_port, uas=True, keys={"code": code})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT, expect=code)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    pushed = crm.wait_for("history")
    assert str(pushed.status).lower() == status, pushed


def test_restricted_direction_is_403(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                     carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", "4930123456789", expect="403")  # EURO: not allowed
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    pushed = crm.wait_for("history")
    assert str(pushed.status).lower() == "notallowed", pushed


# --- forking and cancelling -----------------------------------------------------------------------

def device(sip: SipServer, t: Tenant, login: str, scenario: str, sipp: list[Sipp], talk: str = "500") -> Sipp:
    """Another registered device of ``login`` (the password is set already), playing ``scenario``."""
    port = free_udp_port()
    reg = register(sip, t, login, port=port)
    assert reg.wait() == 0, reg.output()
    phone = Sipp(sip, scenario, port=port, uas=True, keys={"user": login, "talk": talk})
    sipp.append(phone)
    return phone


def test_two_devices_ring_together_one_answers(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                               carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    desk = device(sip_server, sip_tenant, "admin", "phone_answer.xml", sipp)
    mobile = device(sip_server, sip_tenant, "admin", "phone_ring_cancelled.xml", sipp)
    number = number_to(sip_server, sip_tenant, "admin")
    carrier = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert desk.wait() == 0, desk.output()
    assert mobile.wait() == 0, mobile.output()  # CANCELled when the desk phone answered
    assert str(crm.wait_for("history").status).lower() == "success"


def test_caller_gives_up_while_ringing(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                       carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    phone = device(sip_server, sip_tenant, "admin", "phone_ring_cancelled.xml", sipp)
    number = number_to(sip_server, sip_tenant, "admin")
    carrier = Sipp(sip_server, "carrier_cancels.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert phone.wait() == 0, phone.output()  # the phone stops ringing
    assert str(crm.wait_for("history").status).lower() == "missed"
    kinds = [str(n.type).upper() for n in crm.notices("event")]
    assert kinds == ["INCOMING", "CANCELLED"], kinds


def test_phone_transfers_blind_with_refer(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                          carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    target_ext = str(user(sip_tenant, "manager")["ext"])
    port = free_udp_port()
    reg = register(sip_server, sip_tenant, "admin", port=port)
    assert reg.wait() == 0, reg.output()
    admin = Sipp(sip_server, "phone_refers.xml", port=port, uas=True,
                 keys={"user": "admin", "talk": "300", "referto": target_ext, "domain": sip_tenant.name})
    sipp.append(admin)
    manager = device(sip_server, sip_tenant, "manager", "phone_answer.xml", sipp, talk="500")
    number = number_to(sip_server, sip_tenant, "admin")
    carrier = Sipp(sip_server, "carrier_talk.xml", port=carrier_port,  # anchored: no re-INVITE on a transfer
                   keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert admin.wait() == 0, admin.output()
    assert manager.wait() == 0, manager.output()
    transferred = crm.wait_for("event", "TRANSFERRED")
    assert str(transferred.user) == "admin"
    crm.wait_for("history", count=2)  # admin's part, then the client's call with manager
    kinds = [(str(n.type).upper(), str(n.user)) for n in crm.notices("event")]
    assert ("ACCEPTED", "manager") in kinds, kinds


def test_hold_reinvite_is_relayed_to_the_caller(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    phone = device(sip_server, sip_tenant, "admin", "phone_holds.xml", sipp, talk="300")
    number = number_to(sip_server, sip_tenant, "admin")
    carrier = Sipp(sip_server, "carrier_transferred.xml", port=carrier_port,  # answers a re-INVITE, then BYE
                   keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert phone.wait() == 0, phone.output()
    assert str(crm.wait_for("history").status).lower() == "success"


def test_employee_created_with_a_password_registers_at_once(sip_server: SipServer, sip_tenant: Tenant) -> None:
    r = sip_tenant.client.post("/crmapi/v1/users", json={"name": "Новый", "login": "newbie", "password": PASSWORD})
    assert r.status_code == 200, r.text
    phone = register(sip_server, sip_tenant, "newbie")
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "newbie") == "online"
