"""Calls out through another operator (002 §15 "Номера других операторов", issue 16 "Calls out"): an employee's
phone dials an outside number; when the caller ID the engine chose (002 §13) is a §15 number with ``outgoing`` on
and a live registration, the INVITE goes to that operator (sipp: a registrar that challenges REGISTER, then the
outgoing INVITE), From ``login@domain``, and answers the operator's digest challenge; otherwise the carrier peer
carries it. Both backends (``sip_server``)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.sip.conftest import SCENARIOS, Sipp, SipServer, free_udp_port
from tests.sip.test_sip_calls import CLIENT, history, online_phone, phone_dials, set_password

from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.services import callerids, numbers, tenancy
from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.plugin import wait_until as plugin_wait_until
from vpbx.testing.server import Tenant

wait_until = partial(plugin_wait_until, timeout=15)

SIPREGS = "/crmapi/v1/sip-registrations"
AUTH_USER, AUTH_PASSWORD = "op-auth", "Op3rator-Secret"
LOGIN = "op-login"
CHALLENGES = {"407": ("407 Proxy Authentication Required", "Proxy-Authenticate", "Proxy-Authorization"),
              "401": ("401 Unauthorized", "WWW-Authenticate", "Authorization")}
# How operator.xml checks the retried INVITE: sipp's verifyauth reads Authorization only; Proxy-Authorization is
# checked for presence there and verified here (``digest_ok``).
CHECKS = {"401": f'<verifyauth assign_to="inviteauth" username="{AUTH_USER}" password="{AUTH_PASSWORD}"/>',
          "407": '<ereg regexp="Digest .*" search_in="hdr" header="Proxy-Authorization:" check_it="false" '
                 'assign_to="inviteauth"/>'}


class Operator:
    """sipp as the other operator (``operator.xml``): its registrar and its side of outgoing calls, on one port.
    It runs until stopped; what it received is read from its message log."""

    def __init__(self, tmp: Path, challenge: str = "407", talk: str = "300") -> None:
        self.port = free_udp_port()
        status, header, self.answer_header = CHALLENGES[challenge]
        text = (SCENARIOS / "operator.xml").read_text()
        for key, value in {"auth_user": AUTH_USER, "auth_password": AUTH_PASSWORD, "challenge_header": header,
                           "challenge": status, "check_auth": CHECKS[challenge], "talk": talk}.items():
            text = text.replace(f"[{key}]", value)
        self.xml = tmp / f"operator-{self.port}.xml"
        self.xml.write_text(text)
        self.log = tmp / f"operator-{self.port}.log"
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(self.xml), "-i", "127.0.0.1", "-p", str(self.port), "-nostdin", "-trace_msg",
             "-message_file", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self, method: str) -> list[str]:
        """The requests of ``method`` it received, as text."""
        if not self.log.exists():
            return []
        parts = self.log.read_text(errors="replace").split("----------------------------------------------")
        return [p for p in parts if "message received" in p and f"\n{method} sip:" in p]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(challenge: str = "407") -> Operator:
        op = Operator(tmp_path, challenge)
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


def header(message: str, name: str) -> str:
    return next((line for line in message.splitlines() if line.lower().startswith(name.lower() + ":")), "")


def digest_ok(message: str, name: str) -> bool:
    """The digest answer in ``message``'s ``name`` header is right for our credentials (RFC 2617, no qop)."""
    value = header(message, name).split(":", 1)[1].strip()
    assert value.startswith("Digest ")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', value[len("Digest "):]))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{params['username']}:{params['realm']}:{AUTH_PASSWORD}")
    ha2 = md5(f"INVITE:{params['uri']}")
    return params["username"] == AUTH_USER and params["response"] == md5(f"{ha1}:{params['nonce']}:{ha2}")


def sipreg_status(t: Tenant, telnum: str) -> str:
    r = t.client.get(SIPREGS)
    assert r.status_code == 200, r.text
    return str(next(i["status"] for i in r.json()["items"] if i["telnum"] == telnum))


def trunk_for_caller_id(sip: SipServer, t: Tenant, op: Operator, login: str, *, outgoing: bool,
                        password: str = AUTH_PASSWORD, status: str = "success") -> str:
    """A §15 number registered at ``op`` (``outgoing`` as given), a number of the domain, and ``login``'s caller
    ID for outgoing calls (002 §13.4); returned once vpbx's registration has the ``status`` expected."""
    telnum = "7495" + str(uuid.uuid4().int)[:7]
    body = {"telnum": telnum, "name": "Other operator", "domain": op.domain, "login": LOGIN,
            "auth_name": AUTH_USER, "password": password, "expires": 3600, "outgoing": outgoing}
    r = t.client.post(SIPREGS, json=body)
    assert r.status_code == 200, r.text
    srv = sip.server
    domain_id = [0]

    async def work() -> None:
        async with srv.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            domain_id[0] = domain.id
            await numbers.provision(s, domain, telnum, srv.runtime.clock.now(), name="Other operator")
            await callerids.set_user(s, domain.id, login, telnum)
            await s.commit()

    srv.call(work())
    # The API says "success" until the agent's first report (the simulator's default): wait for the agent itself.
    regs = srv.runtime.extras["sip_registrations"]
    wait_until(lambda: regs.status(domain_id[0], telnum) == status)
    assert sipreg_status(t, telnum) == status
    return telnum


def out_row(t: Tenant, telnum: str) -> dict[str, Any]:
    rows = wait_until(lambda: [r for r in history(t) if r["diversion"] == telnum])
    found: dict[str, Any] = rows[0]
    return found


@pytest.mark.parametrize("challenge", ["407", "401"])
def test_outgoing_through_the_registration(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                           carrier_port: int, sipp: list[Sipp], operator: Callable[..., Operator],
                                           challenge: str) -> None:
    op = operator(challenge)
    telnum = trunk_for_caller_id(sip_server, sip_tenant, op, "manager", outgoing=True)
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT)  # a carrier exists too: not used
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()  # answered by the operator's far end, which hung up

    first, retry = wait_until(lambda: (got := op.received("INVITE"))[1:] and got)
    assert f"INVITE sip:{CLIENT}@{op.domain} SIP/2.0" in first, first
    assert f"<sip:{LOGIN}@{op.domain}>" in header(first, "From"), first
    assert f"<sip:{CLIENT}@{op.domain}>" in header(first, "To"), first
    assert not header(first, op.answer_header)
    assert digest_ok(retry, op.answer_header), retry
    assert AUTH_PASSWORD not in first + retry  # only the digest travels
    pushed = crm.wait_for("history")
    assert str(pushed.status).lower() == "success" and str(pushed.type).lower() == "out", pushed
    row = out_row(sip_tenant, telnum)
    assert row["status"] == "success" and row["user"] == "manager", row


def test_outgoing_off_goes_to_the_carrier(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                          carrier_port: int, sipp: list[Sipp],
                                          operator: Callable[..., Operator]) -> None:
    op = operator()
    telnum = trunk_for_caller_id(sip_server, sip_tenant, op, "manager", outgoing=False)
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": "300"})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert far.wait() == 0, far.output()
    row = out_row(sip_tenant, telnum)  # the caller ID is the §15 number all the same
    assert row["status"] == "success", row
    assert op.received("INVITE") == []


def test_registration_not_live_goes_to_the_carrier(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                   carrier_port: int, sipp: list[Sipp],
                                                   operator: Callable[..., Operator]) -> None:
    op = operator()
    telnum = trunk_for_caller_id(sip_server, sip_tenant, op, "manager", outgoing=True, password="not-it",
                                 status="forbidden")  # the operator refuses our registration (403)
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": "300"})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials(sip_server, sip_tenant, "manager", CLIENT)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert far.wait() == 0, far.output()
    assert out_row(sip_tenant, telnum)["status"] == "success"
    assert op.received("INVITE") == []


# --- 002 §16: a number forwarded to the PBX's SIP address -------------------------------------------------

def forwarded_number(sip: SipServer, t: Tenant, login: str) -> tuple[str, str]:
    """Another operator's number with a §16 SIP address (``pbx-<token>@<domain>``), routed to ``login``; returns
    (number, the address's user)."""
    telnum = "7495" + str(uuid.uuid4().int)[:7]
    r = t.client.post("/crmapi/v1/sipuri-transfers", json={"telnum": telnum})
    assert r.status_code == 200, r.text
    uri = str(r.json()["uri"])
    assert uri.startswith("pbx-") and uri.endswith("@" + t.name), uri
    srv = sip.server

    async def work() -> None:
        async with srv.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            await numbers.provision(s, domain, telnum, srv.runtime.clock.now(), name="Forwarded")
            await numbers.set_route(s, domain.id, telnum, TelnumRouteIn(type="user", user=login, greeting=False))
            await s.commit()

    srv.call(work())
    return telnum, uri.split("@", 1)[0]


def test_invite_to_the_sip_address_rings_the_number(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                    sipp: list[Sipp]) -> None:
    phone = online_phone(sip_server, sip_tenant, "admin", sipp, talk="500")
    telnum, user = forwarded_number(sip_server, sip_tenant, "admin")
    # The other operator: no carrier peer, no credentials; the address is enough.
    operator_leg = Sipp(sip_server, "carrier_talk.xml", keys={"caller": CLIENT, "service": user})
    sipp.append(operator_leg)
    assert operator_leg.wait() == 0, operator_leg.output()
    assert phone.wait() == 0, phone.output()
    kinds = [str(n.type).upper() for n in crm.notices("event")]
    assert kinds[:2] == ["INCOMING", "ACCEPTED"], kinds
    row = out_row(sip_tenant, telnum)
    assert row["type"] == "in" and row["status"] == "success" and row["user"] == "admin", row


def test_sip_address_switched_off_or_unknown_is_not_a_call(sip_server: SipServer, sip_tenant: Tenant,
                                                           sipp: list[Sipp]) -> None:
    telnum, user = forwarded_number(sip_server, sip_tenant, "admin")
    assert sip_tenant.client.put(f"/crmapi/v1/sipuri-transfers/{telnum}", json={"active": False}).status_code == 200
    for service in (user, "pbx-NoSuchAddress0000"):  # challenged as any unauthenticated INVITE
        leg = Sipp(sip_server, "carrier_call.xml", keys={"caller": CLIENT, "service": service, "expect": "401"})
        sipp.append(leg)
        assert leg.wait() == 0, leg.output()
    assert [r for r in history(sip_tenant) if r["diversion"] == telnum] == []
