"""SIP over TCP and TLS (``vpbx.telephony.sip.stream``): phones register and call over a stream transport, a
carrier's call over UDP rings a phone registered over TCP, and bytes that are not SIP close only their connection.

sipp here is built without TLS (``-t l1`` is refused), so the TLS phone is sipp over TCP through ``socat``, which
wraps its connection in TLS to the server's TLS port; baresip (when installed) registers over TLS on its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import store_url
from tests.sip.conftest import Sipp, SipServer, free_udp_port, media_ports
from tests.sip.test_sip_calls import (
    CLIENT,
    PASSWORD,
    history,
    number_to,
    set_password,
    status_of,
    user,
    wait_until,
)
from tests.tls import self_signed

from vpbx.settings import Settings
from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.server import ServerThread, Tenant


def free_stream_port(also_next: bool = False) -> int:
    """A port free on UDP and TCP (and TCP on the next one: the server's TLS port)."""
    for _ in range(100):
        port = free_udp_port()
        checks = [(port, socket.SOCK_DGRAM), (port, socket.SOCK_STREAM)]
        if also_next:
            checks.append((port + 1, socket.SOCK_STREAM))
        try:
            for p, kind in checks:
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no free port")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sip_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    """The server with SIP on UDP and TCP at one port, and TLS (a self-signed certificate) at the next one."""
    tmp = tmp_path_factory.mktemp(f"sip-streams-{request.param}")
    cert, key = self_signed(tmp)
    port = free_stream_port(also_next=True)
    settings = Settings(db=store_url(str(request.param), tmp), home=tmp, demo=False, port=0, sip=f"127.0.0.1:{port}",
                        sip_tls_cert=cert, sip_tls_key=key, sip_auth_fail_limit=5, **media_ports())
    srv = ServerThread(settings).start()
    yield SipServer(srv, port)
    srv.stop()


class StreamSipp(Sipp):
    """sipp over TCP (``-t t1``): to the server's SIP port, or to ``target`` (a TLS wrapper's port)."""

    def __init__(self, sip: SipServer, scenario: str, *, port: int | None = None, keys: dict[str, str] | None = None,
                 user: str = "", password: str = "", timeout: int = 30, uas: bool = False,
                 target: int | None = None) -> None:
        super().__init__(sip, scenario, port=port or free_stream_port(), keys=keys, user=user, password=password,
                         timeout=timeout, uas=uas, target=target, extra=("-t", "t1"))


def register_tcp(sip: SipServer, t: Tenant, login: str, *, port: int | None = None, expect: str = "200",
                 target: int | None = None, contact_transport: str = "tcp") -> StreamSipp:
    return StreamSipp(sip, "register_stream.xml", port=port, user=login, password=PASSWORD, target=target,
                      keys={"user": login, "domain": t.name, "expect": expect, "ctransport": contact_transport})


def phone_dials_tcp(sip: SipServer, t: Tenant, login: str, number: str, target: int | None = None) -> StreamSipp:
    return StreamSipp(sip, "phone_call_talk.xml", user=login, password=PASSWORD, target=target,
                      keys={"user": login, "domain": t.name, "service": number})


@pytest.fixture
def tls_wrapper(sip_server: SipServer) -> Iterator[int]:
    """A loopback TCP port whose connections ``socat`` carries over TLS to the server's SIP TLS port."""
    if shutil.which("socat") is None:  # pragma: no cover - CI installs socat
        pytest.skip("socat is not installed")
    port = free_stream_port()
    proc = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                             f"OPENSSL:127.0.0.1:{sip_server.sip_port + 1},verify=0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening)
    yield port
    proc.terminate()
    proc.wait(10)


# --- TCP ------------------------------------------------------------------------------------------

def test_phone_registers_over_tcp(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    phone = register_tcp(sip_server, sip_tenant, "admin")
    sipp.append(phone)
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "admin") == "online"


def test_wrong_password_over_tcp_is_403(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "ivan")
    phone = StreamSipp(sip_server, "register_stream.xml", user="ivan", password="wrong",
                       keys={"user": "ivan", "domain": sip_tenant.name, "expect": "403", "ctransport": "tcp"})
    sipp.append(phone)
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "ivan") == "offline"


def test_carrier_call_over_udp_rings_a_tcp_phone(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                                 carrier_port: int, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    number = number_to(sip_server, sip_tenant, "admin")
    port = free_stream_port()
    reg = register_tcp(sip_server, sip_tenant, "admin", port=port)
    sipp.append(reg)
    assert reg.wait() == 0, reg.output()
    # The registering sipp has closed its connection: the server connects to the registered Contact over TCP.
    phone = StreamSipp(sip_server, "phone_answer.xml", port=port, uas=True, keys={"user": "admin", "talk": "500"})
    sipp.append(phone)
    carrier = Sipp(sip_server, "carrier_talk.xml", port=carrier_port, keys={"caller": CLIENT, "service": number})
    sipp.append(carrier)
    assert carrier.wait() == 0, carrier.output()
    assert phone.wait() == 0, phone.output()
    assert str(crm.wait_for("history").status).lower() == "success"
    rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
    assert rows[0]["status"] == "success" and rows[0]["user"] == "admin", rows


def test_tcp_phone_calls_out_and_hears_the_bye(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                               carrier_port: int, sipp: list[Sipp]) -> None:
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": "500"})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials_tcp(sip_server, sip_tenant, "manager", CLIENT)  # the far end's BYE reaches it over TCP
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert far.wait() == 0, far.output()
    pushed = crm.wait_for("history")
    assert str(pushed.status).lower() == "success" and str(pushed.type).lower() == "out", pushed


def test_internal_call_between_tcp_phones(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    port = free_stream_port()
    reg = register_tcp(sip_server, sip_tenant, "admin", port=port)
    sipp.append(reg)
    assert reg.wait() == 0, reg.output()
    admin = StreamSipp(sip_server, "phone_answer.xml", port=port, uas=True, keys={"user": "admin", "talk": "300"})
    sipp.append(admin)
    set_password(sip_tenant, "manager")
    caller = phone_dials_tcp(sip_server, sip_tenant, "manager", str(user(sip_tenant, "admin")["ext"]))
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert admin.wait() == 0, admin.output()


# --- TLS ------------------------------------------------------------------------------------------

def test_phone_registers_over_tls(sip_server: SipServer, sip_tenant: Tenant, tls_wrapper: int,
                                  sipp: list[Sipp]) -> None:
    set_password(sip_tenant, "admin")
    phone = register_tcp(sip_server, sip_tenant, "admin", target=tls_wrapper, contact_transport="tls")
    sipp.append(phone)
    assert phone.wait() == 0, phone.output()
    assert status_of(sip_tenant, "admin") == "online"


def test_tls_phone_calls_out_and_hears_the_bye(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                               carrier_port: int, tls_wrapper: int, sipp: list[Sipp]) -> None:
    far = Sipp(sip_server, "phone_answer.xml", port=carrier_port, uas=True, keys={"user": CLIENT, "talk": "500"})
    sipp.append(far)
    set_password(sip_tenant, "manager")
    caller = phone_dials_tcp(sip_server, sip_tenant, "manager", CLIENT, target=tls_wrapper)
    sipp.append(caller)
    assert caller.wait() == 0, caller.output()
    assert far.wait() == 0, far.output()
    assert str(crm.wait_for("history").status).lower() == "success"


# --- what is not SIP --------------------------------------------------------------------------------

def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether the server closes ``sock`` (reads until EOF; what it sent before is ignored)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def tcp_to(sip: SipServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", sip.sip_port), timeout=5)


@pytest.mark.parametrize("junk", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not SIP
    b"\x16\x03\x01\x02\x00" + os.urandom(300) + b"\r\n\r\n",  # a TLS hello on the TCP port
    b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",  # a body too large
    b"REGISTER sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nX-Pad: " + b"a" * 70_000,  # headers that never end
], ids=["http", "tls-hello", "huge-body", "bad-length", "endless-headers"])
def test_junk_on_tcp_closes_that_connection_only(sip_server: SipServer, sip_tenant: Tenant, sipp: list[Sipp],
                                                 junk: bytes) -> None:
    bystander = tcp_to(sip_server)  # another peer's connection stays open
    with tcp_to(sip_server) as sock:
        try:
            sock.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_by_server(sock)
    bystander.sendall(b"\r\n\r\n")  # a keep-alive ping is answered with a pong on the open connection
    bystander.settimeout(5)
    assert bystander.recv(16) == b"\r\n"
    bystander.close()
    test_phone_registers_over_tcp(sip_server, sip_tenant, sipp)  # and the server keeps serving


def test_junk_on_the_tls_port_closes_that_connection_only(sip_server: SipServer, sip_tenant: Tenant,
                                                          tls_wrapper: int, sipp: list[Sipp]) -> None:
    with socket.create_connection(("127.0.0.1", sip_server.sip_port + 1), timeout=5) as sock:
        sock.sendall(b"REGISTER sip:x SIP/2.0\r\n\r\n")  # no TLS handshake
        assert closed_by_server(sock)
    test_phone_registers_over_tls(sip_server, sip_tenant, tls_wrapper, sipp)


def test_half_message_then_gone_and_unparsable_sip(sip_server: SipServer, sip_tenant: Tenant,
                                                   sipp: list[Sipp]) -> None:
    with tcp_to(sip_server) as sock:  # a peer that goes away mid-message
        sock.sendall(b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\nCont")
    with tcp_to(sip_server) as sock:  # framed, but not a message sippy can parse: dropped, the connection stays
        sock.sendall(b"FOO sip:x SIP/2.0\r\nVia: nonsense\r\nCSeq: x\r\nContent-Length: 4\r\n\r\nbody")
        sock.sendall(b"\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(16) == b"\r\n"
    test_phone_registers_over_tcp(sip_server, sip_tenant, sipp)


def test_message_left_half_sent_times_out(sip_server: SipServer, sip_tenant: Tenant,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbx.telephony.sip import stream

    monkeypatch.setattr(stream, "INCOMPLETE_SECONDS", 1.0)
    with tcp_to(sip_server) as sock:
        sock.sendall(b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9")
        assert closed_by_server(sock, timeout=10)


def test_framing_by_content_length(sip_server: SipServer) -> None:
    """Messages split anywhere or sent back to back come out whole; keep-alive CRLFs are told apart from them."""
    from vpbx.telephony.sip import stream  # after the server: sippy's modules are first imported by its reactor

    first = b"OPTIONS sip:x SIP/2.0\r\nl: 4\r\nVia: SIP/2.0/TCP h\r\n\r\nbody"
    second = b"SIP/2.0 200 OK\r\nContent-Length:0\r\n\r\n"
    wire = b"\r\n\r\n" + first + b"\r\n" + second + b"\r\n\r\n"
    framer = stream.Framer()
    out = [item for i in range(len(wire)) for item in framer.feed(wire[i:i + 1])]
    assert out == [stream.PING, first, second, stream.PING] and not framer.partial
    assert stream.Framer().feed(wire) == out
    half = stream.Framer()
    assert half.feed(first[:-1]) == [] and half.partial


# --- a real softphone ----------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_baresip_over_a_stream_is_called_on_its_connection(sip_server: SipServer, sip_tenant: Tenant,
                                                           crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
                                                           tmp_path: Path, transport: str) -> None:
    """baresip keeps the connection it registered on open; the carrier's call reaches it over that connection."""
    if shutil.which("baresip") is None:  # pragma: no cover - CI installs baresip
        pytest.skip("baresip is not installed")
    from tests.sip.test_sip_baresip import start_baresip

    proc = start_baresip(tmp_path, sip_tenant, sip_server.sip_port + (1 if transport == "tls" else 0), transport)

    def fail(what: str) -> AssertionError:
        proc.kill()
        assert proc.stdout is not None
        return AssertionError(what + proc.stdout.read().decode(errors="replace")[-4000:])

    try:
        try:
            wait_until(lambda: status_of(sip_tenant, "admin") == "online", timeout=20)
        except AssertionError:
            raise fail("baresip did not register: ") from None
        number = number_to(sip_server, sip_tenant, "admin")
        carrier = Sipp(sip_server, "carrier_hangs_up.xml", port=carrier_port,
                       keys={"caller": CLIENT, "service": number, "talk": "1000"})
        sipp.append(carrier)
        if carrier.wait() != 0:
            raise fail(carrier.output())
        rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
        assert rows[0]["status"] == "success" and rows[0]["user"] == "admin", rows
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the options -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--sip", "127.0.0.1:5060", "--sip-tls-cert", "c.pem"], "give both --sip-tls-cert and --sip-tls-key"),
    (["--sip-tls-cert", "c.pem", "--sip-tls-key", "k.pem"], "SIP over TLS needs --sip"),
    (["--sip", "127.0.0.1:5060", "--sip-tls", "nonsense:port"], "HOST:PORT"),
])
def test_serve_checks_the_tls_options(args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from vpbx.cli import app

    result = CliRunner().invoke(app, ["serve", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and message in result.output, result.output
