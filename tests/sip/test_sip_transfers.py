"""Transfers from SIP phones (REFER) on loopback, mapped onto the engine's transfer modes: attended with
``Replaces`` (the phone placed the consultation itself), blind from the phone that placed the call, and
refusals (reported in the REFER's NOTIFY). The CRM gets what it gets for the simulator's transfers
(tests/engine/test_transfers.py)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.sip.conftest import Sipp, SipServer, free_udp_port
from tests.sip.test_sip_calls import (
    CLIENT,
    PASSWORD,
    device,
    history,
    number_to,
    register,
    set_password,
    user,
    wait_until,
)

from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.server import Tenant


class SecondLine(Sipp):
    """A phone's second line placing a call with a Call-ID chosen beforehand (``-cid_str``): its other line's
    REFER names that dialog in ``Replaces``."""

    def __init__(self, sip: SipServer, scenario: str, callid: str, *, keys: dict[str, str], user: str,
                 password: str, timeout: int = 30) -> None:
        super().__init__(sip, scenario, keys=keys, user=user, password=password, timeout=timeout,
                         extra=("-cid_str", callid))


def ext_of(t: Tenant, login: str) -> str:
    return str(user(t, login)["ext"])


def events(crm: CrmReceiver) -> list[tuple[str, str, str]]:
    """(callid, TYPE, user) of every event the CRM got, in order."""
    return [(str(n.callid), str(n.type).upper(), str(n.user)) for n in crm.notices("event")]


def labels(crm: CrmReceiver, callid: str) -> list[str]:
    return [f"{kind}:{who}" for cid, kind, who in events(crm) if cid == callid]


def inner(t: Tenant) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = t.client.get("/crmapi/v1/history/inner/json",
                                              params={"period": "this_month"}).json()
    return rows


def all_done(*phones: Sipp) -> None:
    for p in phones:
        assert p.wait() == 0, p.output()


# --- attended: REFER with Replaces -------------------------------------------------------------------

def test_attended_transfer_with_replaces(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                         carrier_port: int, sipp: list[Sipp]) -> None:
    """The client calls admin through the carrier; admin's phone puts the client on hold, calls manager by
    extension on a second line (an internal call), then REFERs the client to manager with Replaces naming that
    call: the client talks to manager, on the same call (TRANSFERRED without second_callid, manager's card),
    the consultation is an inner call of its own, as for the simulator's attended transfer."""
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    manager_ext = ext_of(sip_tenant, "manager")
    consult_id, consult_tag = f"consult-{uuid.uuid4().hex}@127.0.0.1", f"line2-{uuid.uuid4().hex[:8]}"
    port = free_udp_port()
    reg = register(sip_server, sip_tenant, "admin", port=port)
    assert reg.wait() == 0, reg.output()
    refer_to = f"sip:{manager_ext}@{sip_tenant.name}?Replaces={consult_id}%3Bfrom-tag%3D{consult_tag}"
    admin = Sipp(sip_server, "phone_holds_then_transfers.xml", port=port, uas=True,
                 keys={"user": "admin", "hold": "200", "wait": "3000", "referuri": refer_to,
                       "domain": sip_tenant.name, "frag": "200"})
    sipp.append(admin)
    manager = device(sip_server, sip_tenant, "manager", "phone_joins.xml", sipp, talk="500")
    number = number_to(sip_server, sip_tenant, "admin")
    # the client answers the hold (relayed), then talks to manager until manager hangs up (the PBX's BYE)
    client = Sipp(sip_server, "carrier_transferred.xml", port=carrier_port,
                  keys={"caller": CLIENT, "service": number})
    sipp.append(client)
    crm.wait_for("event", "ACCEPTED", timeout=15)  # admin talks to the client: the second line dials manager
    line2 = SecondLine(sip_server, "phone_consults.xml", consult_id, user="admin", password=PASSWORD,
                       keys={"user": "admin", "domain": sip_tenant.name, "service": manager_ext,
                             "consulttag": consult_tag})
    sipp.append(line2)
    all_done(client, admin, line2, manager)

    pushed = crm.wait_for("history", timeout=15)
    callid = str(pushed.callid)
    assert labels(crm, callid) == ["INCOMING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "INCOMING:manager",
                                   "ACCEPTED:manager", "COMPLETED:manager"], events(crm)
    transferred = crm.notices("event", "TRANSFERRED")[0]
    assert not getattr(transferred, "second_callid", None)
    assert [n.command for n in crm.notices()].count("history") == 1  # the consultation is internal: no CRM
    rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
    assert (rows[0]["status"], rows[0]["user"]) == ("success", "manager"), rows
    consults = wait_until(lambda: [r for r in inner(sip_tenant) if r["from"] == "admin"])
    assert [(r["to"], r["status"]) for r in consults] == [("manager", "success")], consults


def test_attended_transfer_of_an_outgoing_call_from_the_consultation(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp]) -> None:
    """admin's first line calls the client out; its second line calls manager, then REFERs (on that
    consultation's dialog) with Replaces naming the first: the client stays on its call, now with manager (the
    client's leg and manager re-offered each other's SDP), as the simulator's attended transfer of an outgoing
    call reports it."""
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    first_id, first_tag = f"out-{uuid.uuid4().hex}@127.0.0.1", f"line1-{uuid.uuid4().hex[:8]}"
    far = Sipp(sip_server, "far_end_transferred.xml", port=carrier_port, uas=True)
    sipp.append(far)
    manager = device(sip_server, sip_tenant, "manager", "phone_joins.xml", sipp, talk="500")
    line1 = SecondLine(sip_server, "phone_consults.xml", first_id, user="admin", password=PASSWORD,
                       keys={"user": "admin", "domain": sip_tenant.name, "service": CLIENT,
                             "consulttag": first_tag})
    sipp.append(line1)
    crm.wait_for("event", "ACCEPTED", timeout=15)  # the client answered admin's call
    line2 = Sipp(sip_server, "phone_call_refers.xml", user="admin", password=PASSWORD,
                 keys={"user": "admin", "domain": sip_tenant.name, "service": ext_of(sip_tenant, "manager"),
                       "wait": "1500", "frag": "200",
                       "referuri": f"sip:{CLIENT}@{sip_tenant.name}?Replaces={first_id}%3Bfrom-tag%3D{first_tag}"})
    sipp.append(line2)
    all_done(line2, line1, manager, far)

    pushed = crm.wait_for("history", timeout=15)
    callid = str(pushed.callid)
    assert labels(crm, callid) == ["OUTGOING:admin", "ACCEPTED:admin", "TRANSFERRED:admin", "INCOMING:manager",
                                   "ACCEPTED:manager", "COMPLETED:manager"], events(crm)
    assert (str(pushed.type).lower(), str(pushed.user)) == ("out", "manager"), pushed
    assert str(pushed.status).lower().endswith("success"), pushed


# --- blind -------------------------------------------------------------------------------------------------

def test_called_phone_transfers_blind_and_hears_the_outcome(sip_server: SipServer, sip_tenant: Tenant,
                                                            crm: CrmReceiver, carrier_port: int,
                                                            sipp: list[Sipp]) -> None:
    """admin's phone REFERs the client to manager's extension: the client's call goes on as a new call
    (second_callid) answered by manager; the REFER's NOTIFY reports 200."""
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    port = free_udp_port()
    reg = register(sip_server, sip_tenant, "admin", port=port)
    assert reg.wait() == 0, reg.output()
    admin = Sipp(sip_server, "phone_transfers.xml", port=port, uas=True,
                 keys={"user": "admin", "wait": "300", "domain": sip_tenant.name, "frag": "200",
                       "referuri": f"sip:{ext_of(sip_tenant, 'manager')}@{sip_tenant.name}"})
    sipp.append(admin)
    manager = device(sip_server, sip_tenant, "manager", "phone_answer.xml", sipp, talk="500")
    number = number_to(sip_server, sip_tenant, "admin")
    client = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(client)
    all_done(admin, manager, client)
    crm.wait_for("history", count=2, timeout=15)
    transferred = crm.wait_for("event", "TRANSFERRED")
    first, second = str(transferred.callid), str(transferred.second_callid)
    assert labels(crm, first) == ["INCOMING:admin", "ACCEPTED:admin", "TRANSFERRED:admin"], events(crm)
    assert labels(crm, second) == ["INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager"], events(crm)


# --- blind from the caller's side ---------------------------------------------------------------------

def test_caller_transfers_its_outgoing_call_blind(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                  carrier_port: int, sipp: list[Sipp]) -> None:
    """admin's phone calls the client out through the carrier, then REFERs its own call to manager: the client
    goes on as a new call (second_callid) ringing manager, re-offered manager's SDP once manager answers."""
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    manager_ext = ext_of(sip_tenant, "manager")
    far = Sipp(sip_server, "far_end_transferred.xml", port=carrier_port, uas=True)
    sipp.append(far)
    manager = device(sip_server, sip_tenant, "manager", "phone_answer.xml", sipp, talk="500")
    admin = Sipp(sip_server, "phone_call_refers.xml", user="admin", password=PASSWORD,
                 keys={"user": "admin", "domain": sip_tenant.name, "service": CLIENT, "wait": "500",
                       "referuri": f"sip:{manager_ext}@{sip_tenant.name}", "frag": "200"})
    sipp.append(admin)
    all_done(admin, manager, far)

    crm.wait_for("history", count=2, timeout=15)
    transferred = crm.wait_for("event", "TRANSFERRED")
    first, second = str(transferred.callid), str(transferred.second_callid)
    assert second and str(transferred.user) == "admin"
    assert labels(crm, first) == ["OUTGOING:admin", "ACCEPTED:admin", "TRANSFERRED:admin"], events(crm)
    assert labels(crm, second) == ["INCOMING:manager", "ACCEPTED:manager", "COMPLETED:manager"], events(crm)
    statuses = {str(h.callid): (str(h.status).lower(), str(h.user)) for h in crm.notices("history")}
    assert statuses[first][1] == "admin" and statuses[second][1] == "manager", statuses
    assert all(s.endswith("success") for s, _ in statuses.values()), statuses


# --- refusals -------------------------------------------------------------------------------------------

def test_refer_to_an_unknown_target_is_refused(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                               carrier_port: int, sipp: list[Sipp]) -> None:
    """Nobody is "nobody": the NOTIFY reports 404, admin's part ends as a hang-up (the client's call ends,
    answered by admin), and nothing was transferred."""
    set_password(sip_tenant, "admin")
    port = free_udp_port()
    reg = register(sip_server, sip_tenant, "admin", port=port)
    assert reg.wait() == 0, reg.output()
    admin = Sipp(sip_server, "phone_transfers.xml", port=port, uas=True,
                 keys={"user": "admin", "wait": "300", "referuri": f"sip:nobody@{sip_tenant.name}",
                       "domain": sip_tenant.name, "frag": "404"})
    sipp.append(admin)
    number = number_to(sip_server, sip_tenant, "admin")
    client = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(client)
    all_done(admin, client)
    pushed = crm.wait_for("history", timeout=15)
    assert str(pushed.status).lower().endswith("success") and str(pushed.user) == "admin", pushed
    assert labels(crm, str(pushed.callid)) == ["INCOMING:admin", "ACCEPTED:admin", "COMPLETED:admin"], events(crm)


def test_refer_of_an_internal_call_is_refused(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    """The engine does not transfer internal calls: admin's REFER of its call to manager gets 403 in the
    NOTIFY and the call ends (manager's phone gets the BYE)."""
    set_password(sip_tenant, "admin")
    set_password(sip_tenant, "manager")
    manager = device(sip_server, sip_tenant, "manager", "equivalence_phone_answers_until_bye.xml", sipp)
    admin = Sipp(sip_server, "phone_call_refers.xml", user="admin", password=PASSWORD,
                 keys={"user": "admin", "domain": sip_tenant.name, "service": ext_of(sip_tenant, "manager"),
                       "wait": "300", "referuri": f"sip:{CLIENT}@{sip_tenant.name}", "frag": "403"})
    sipp.append(admin)
    all_done(admin, manager)
    rows = wait_until(lambda: [r for r in inner(sip_tenant) if r["from"] == "admin" and r["to"] == "manager"])
    assert rows[0]["status"] == "success", rows
