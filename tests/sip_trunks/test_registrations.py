"""002 §15 registrations made real (issue 16): vpbx REGISTERs to a real registrar (sipp on loopback), answers its
digest challenge with the password sealed at rest, refreshes before the granted expiry, shows the real ``status``
in ``GET /crmapi/v1/sip-registrations``, delivers ``sipregs_error`` webhooks on failure, and follows the API's
changes (password fixed, registration disabled, deleted: unregistered with ``Expires: 0``). Both backends."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from vpbx.telephony.sip.registrations import Registrations
from vpbx.telephony.sip.stack import SipStack
from vpbx.testing.server import ServerThread, Tenant

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="needs sipp (Debian sip-tester)")

SCENARIOS = Path(__file__).parent / "scenarios"
USER, PASSWORD = "trunk-user", "S3cret!pw"
BASE = "/crmapi/v1/sip-registrations"


def udp_port() -> int:
    """A port free on UDP and on TCP: the SIP stack listens on both."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on UDP and TCP")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Registrar:
    """sipp as the other operator's registrar on loopback; its messages are kept in a log we can read."""

    def __init__(self, tmp: Path, scenario: str, bad_code: int = 401) -> None:
        self.port = udp_port()
        text = (SCENARIOS / scenario).read_text().replace("USERNAME", USER).replace("PASSWORD", PASSWORD)
        self.xml = tmp / f"{self.port}-{scenario}"
        self.xml.write_text(text.replace("BAD_CODE", str(bad_code)))
        self.log = tmp / f"{self.port}-messages.log"
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(self.xml), "-i", "127.0.0.1", "-p", str(self.port), "-nostdin", "-trace_msg",
             "-message_file", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def registers(self) -> list[str]:
        """REGISTER requests received, as text."""
        if not self.log.exists():
            return []
        parts = self.log.read_text(errors="replace").split("----------------------------------------------")
        return [p for p in parts if "message received" in p and "REGISTER sip:" in p]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Hooks:
    """The webhook subscriber: every POST kept."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hooks.got.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def for_telnum(self, telnum: str) -> list[dict[str, Any]]:
        """The ``sipregs_error`` notices about ``telnum`` (the CRM's dialect: form fields, ``data`` as JSON)."""
        notices = [{k: v[0] for k, v in parse_qs(b.decode()).items()} for b in self.got]
        return [n for n in notices
                if n.get("type") == "sipregs_error" and json.loads(n.get("data", "{}")).get("telnum") == telnum]


@pytest.fixture
def sip(server: ServerThread, registrars: Callable[..., Registrar]) -> Iterator[Registrations]:
    """A SIP stack on loopback inside the test server, and the registration agents running on it (stopped
    before the registrars: nothing is left in flight to them)."""
    stack = SipStack("127.0.0.1", udp_port(), lambda req, t: (req.genResponse(405, "Method Not Allowed"), None,
                                                                None))

    async def start() -> Registrations:
        await stack.start()
        regs = Registrations(server.runtime, stack, retry=1.0, poll=0.1)
        await regs.start()
        return regs

    regs = server.call(start())
    yield regs

    async def stop() -> None:
        await regs.stop()
        await stack.stop()

    server.call(stop())


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.httpd.shutdown()


@pytest.fixture
def registrars(tmp_path: Path) -> Iterator[Callable[..., Registrar]]:
    started: list[Registrar] = []

    def start(scenario: str = "registrar.xml", bad_code: int = 401) -> Registrar:
        r = Registrar(tmp_path, scenario, bad_code)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def status(tenant: Tenant, telnum: str) -> str:
    r = tenant.client.get(BASE)
    assert r.status_code == 200, r.text
    return next(i["status"] for i in r.json()["items"] if i["telnum"] == telnum)


def test_registers_refreshes_and_unregisters(sip: Registrations, tenant: Tenant, hooks: Hooks,
                                             registrars: Callable[..., Registrar]) -> None:
    registrar = registrars()
    assert tenant.client.post("/crmapi/v1/webhook", json={"url": hooks.url}).status_code == 204
    body = {"telnum": "74951110001", "name": "Trunk", "domain": registrar.address, "login": "74951110001",
            "auth_name": USER, "password": PASSWORD, "expires": 60}
    assert tenant.client.post(BASE, json=body).status_code == 200

    first = wait_for("challenged, then answered", lambda: (r := registrar.registers())[1:] and r)
    wait_for("status success", lambda: status(tenant, "74951110001") == "success")
    assert "Authorization: Digest" in first[1] and f'username="{USER}"' in first[1]
    assert PASSWORD not in "".join(first)  # only the digest travels
    assert "Contact: <sip:74951110001@127.0.0.1:" in first[0] and "Expires: 60" in first[0]
    assert "To: <sip:74951110001@127.0.0.1:" in first[0]
    # Granted 2 s: refreshed before it lapses (each refresh is challenged afresh: 2 more REGISTERs)
    wait_for("a refresh", lambda: len(registrar.registers()) >= 4, timeout=10)
    assert status(tenant, "74951110001") == "success"
    assert hooks.for_telnum("74951110001") == []

    # Disabled through the API: unregistered (Expires: 0), and the API says disabled.
    assert tenant.client.put(f"{BASE}/74951110001", json={"active": False}).status_code == 200
    wait_for("an unregistration", lambda: any("Expires: 0" in m for m in registrar.registers()))
    assert status(tenant, "74951110001") == "disabled"
    assert sip.status(tenant_domain_id(sip, "74951110001"), "74951110001") is None


def tenant_domain_id(sip: Registrations, telnum: str) -> int:
    """The domain id of the tenant's registration, as the agents know it (0 when none runs)."""
    for (domain_id, t) in list(sip._agents):
        if t == telnum:
            return domain_id
    return 0


def test_wrong_password_then_fixed(sip: Registrations, tenant: Tenant, hooks: Hooks,
                                   registrars: Callable[..., Registrar]) -> None:
    registrar = registrars(bad_code=401)
    assert tenant.client.post("/crmapi/v1/webhook", json={"url": hooks.url}).status_code == 204
    body = {"telnum": "74951110002", "name": "Wrong", "domain": registrar.address, "login": USER,
            "password": "not-the-password"}
    assert tenant.client.post(BASE, json=body).status_code == 200

    wait_for("status auth_failed", lambda: status(tenant, "74951110002") == "auth_failed")
    (hook,) = wait_for("the sipregs_error webhook", lambda: hooks.for_telnum("74951110002"))
    assert hook["cmd"] == "webhook" and hook["id"]
    assert json.loads(hook["data"]) == {"telnum": "74951110002", "name": "Wrong", "domain": registrar.address}
    # Retried (every second here) without a second webhook: the status did not change.
    wait_for("a retry", lambda: len(registrar.registers()) >= 4, timeout=10)
    assert len(hooks.for_telnum("74951110002")) == 1

    # The password fixed through the API: registered.
    assert tenant.client.put(f"{BASE}/74951110002", json={"password": PASSWORD}).status_code == 200
    wait_for("status success", lambda: status(tenant, "74951110002") == "success")

    # Deleted: no more REGISTERs after the unregistration.
    assert tenant.client.delete(f"{BASE}/74951110002").status_code == 204
    wait_for("an unregistration", lambda: any("Expires: 0" in m for m in registrar.registers()))
    assert tenant_domain_id(sip, "74951110002") == 0


def test_refused_with_403(sip: Registrations, tenant: Tenant, hooks: Hooks,
                          registrars: Callable[..., Registrar]) -> None:
    registrar = registrars("registrar_403.xml")
    assert tenant.client.post("/crmapi/v1/webhook", json={"url": hooks.url}).status_code == 204
    body = {"telnum": "74951110003", "name": "Refused", "domain": registrar.address, "login": USER,
            "password": PASSWORD}
    assert tenant.client.post(BASE, json=body).status_code == 200
    wait_for("status forbidden", lambda: status(tenant, "74951110003") == "forbidden")
    (hook,) = wait_for("the sipregs_error webhook", lambda: hooks.for_telnum("74951110003"))
    assert json.loads(hook["data"]) == {"telnum": "74951110003", "name": "Refused", "domain": registrar.address}


def test_nobody_answers_and_unknown_host(sip: Registrations, tenant: Tenant) -> None:
    # A host that does not resolve: error at once (retried later).
    body = {"telnum": "74951110004", "name": "Nowhere", "domain": "no-such-registrar.invalid", "login": USER,
            "password": PASSWORD}
    assert tenant.client.post(BASE, json=body).status_code == 200
    wait_for("status error", lambda: status(tenant, "74951110004") == "error")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_vpbx_serve_with_sip_keeps_trunks_registered(store: str, tmp_path: Path,
                                                     registrars: Callable[..., Registrar]) -> None:
    """The server's own wiring (``vpbx serve --sip``): registrations start with the SIP stack, and the server's
    shutdown unregisters them before the stack stops."""
    import os

    from vpbx.settings import Settings
    from vpbx.testing.postgres import SKIP_REASON, empty_database
    from vpbx.testing.server import create_tenant

    if store == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vpbx.db'}"
    else:
        pg = os.environ.get("VPBX_TEST_PG_URL", "")
        if not pg:
            pytest.skip(SKIP_REASON)
        url = empty_database(pg, "_sipregs")
    registrar = registrars()
    srv = ServerThread(Settings(db=url, home=tmp_path, demo=False, port=0, sip=f"127.0.0.1:{udp_port()}",
                                rtpengine="off")).start()  # no media needed here
    try:
        tenant = create_tenant(srv)
        body = {"telnum": "74951110009", "name": "Served", "domain": registrar.address, "login": USER,
                "password": PASSWORD}
        assert tenant.client.post(BASE, json=body).status_code == 200
        wait_for("challenged, then answered", lambda: len(registrar.registers()) >= 2)
        wait_for("status success", lambda: status(tenant, "74951110009") == "success")
    finally:
        srv.stop()
    assert any("Expires: 0" in m for m in registrar.registers())  # unregistered on the way out


def test_interval_too_brief(sip: Registrations, tenant: Tenant, registrars: Callable[..., Registrar]) -> None:
    registrar = registrars("registrar_423.xml")
    body = {"telnum": "74951110005", "name": "Longer", "domain": registrar.address, "login": USER,
            "password": PASSWORD, "expires": 60}
    assert tenant.client.post(BASE, json=body).status_code == 200
    sent = wait_for("asked again for longer", lambda: (r := registrar.registers())[1:] and r)
    assert "Expires: 60" in sent[0] and "Expires: 3600" in sent[1]
    wait_for("status success", lambda: status(tenant, "74951110005") == "success")
