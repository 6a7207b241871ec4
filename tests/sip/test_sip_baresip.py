"""A real softphone (Debian baresip) registers with the employee's password and answers a carrier's call."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.sip.conftest import Sipp, SipServer, free_udp_port
from tests.sip.test_sip_calls import CLIENT, PASSWORD, history, number_to, set_password, status_of, wait_until

from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.server import Tenant

if shutil.which("baresip") is None:  # pragma: no cover - CI installs baresip
    pytest.skip("baresip is not installed", allow_module_level=True)

MODULES = Path("/usr/lib/baresip/modules")


def baresip_port() -> int:
    """A port free for baresip's SIP: UDP and TCP on it, and TLS on the next one."""
    for _ in range(50):
        port = free_udp_port()
        try:
            for p, kind in ((port, socket.SOCK_DGRAM), (port, socket.SOCK_STREAM), (port + 1, socket.SOCK_STREAM)):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no free port for baresip")


def start_baresip(folder: Path, tenant: Tenant, server_port: int, transport: str = "udp") -> subprocess.Popen[bytes]:
    """admin's softphone (its password set) in ``folder``: registers to ``server_port`` over ``transport`` and
    answers every call by itself."""
    set_password(tenant, "admin")
    (folder / "config").write_text("\n".join([
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{baresip_port()}",
        f"module_path {MODULES}",
        # No sound card: aubridge is both the microphone and the speaker (what it hears, it plays back).
        "module g711.so", "module aubridge.so", "module menu.so", "module account.so",
        "audio_source aubridge,vpbx", "audio_player aubridge,vpbx", "audio_alert aubridge,alert",
        "rtp_ports 40000-40100", "",
    ]))
    (folder / "accounts").write_text(
        f"<sip:admin@{tenant.name};transport={transport}>;auth_pass={PASSWORD};"
        f"outbound=\"sip:127.0.0.1:{server_port};transport={transport}\";regint=300;answermode=auto\n")
    (folder / "contacts").write_text("")
    return subprocess.Popen(["baresip", "-f", str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


@pytest.fixture
def baresip(sip_server: SipServer, sip_tenant: Tenant, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """admin's softphone: registers to the server's SIP port and answers every call by itself."""
    proc = start_baresip(tmp_path, sip_tenant, sip_server.sip_port)
    yield proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_baresip_registers_and_answers(sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver,
                                       carrier_port: int, baresip: subprocess.Popen[bytes],
                                       sipp: list[Sipp]) -> None:
    try:
        wait_until(lambda: status_of(sip_tenant, "admin") == "online", timeout=20)
    except AssertionError:
        baresip.kill()
        assert baresip.stdout is not None
        raise AssertionError(baresip.stdout.read().decode(errors="replace")[-3000:]) from None
    number = number_to(sip_server, sip_tenant, "admin")
    carrier = Sipp(sip_server, "carrier_hangs_up.xml", port=carrier_port,
                   keys={"caller": CLIENT, "service": number, "talk": "1000"})
    sipp.append(carrier)
    if carrier.wait() != 0:
        baresip.kill()
        assert baresip.stdout is not None
        raise AssertionError(carrier.output() + baresip.stdout.read().decode(errors="replace")[-4000:])
    kinds = [str(n.type).upper() for n in (crm.wait_for("history") and crm.notices("event"))]
    assert kinds[:2] == ["INCOMING", "ACCEPTED"] and "COMPLETED" in kinds, kinds
    rows = wait_until(lambda: [r for r in history(sip_tenant) if r["diversion"] == number])
    assert rows[0]["status"] == "success" and rows[0]["user"] == "admin", rows
