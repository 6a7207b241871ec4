"""``vpbx call answer|reject|hangup|dtmf|transfer|show`` (by a call id's unique prefix), ``vpbx calls`` at 100
columns, ``vpbx deliveries list`` on the demo domain by default, ``vpbx sim run`` on a scratch server of its own."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from tests.cli.conftest import run
from typer.testing import CliRunner

from vpbx import cli
from vpbx.testing.server import ServerThread, Tenant, create_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
CLIENT = "79101234567"
MAIN = "74951234567"  # the demo company's main number: sales (BYORDER: admin first)
SPB = "78121234567"  # the IVR: 1 sales, 2 support


@pytest.fixture
def t(vserver: ServerThread) -> Iterator[Tenant]:
    tenant = create_tenant(vserver)
    for login in ("admin", "manager", "sergey", "anna", "user1"):
        assert tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    yield tenant
    tenant.client.close()


@pytest.fixture(autouse=True)
def console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=100, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=100, stderr=True))
    for name in ("VPBX_API_KEY", "VPBX_URL", "VPBX_HOME"):
        monkeypatch.delenv(name, raising=False)


def callid_in(out: str) -> str:
    found = re.search(r"call ([0-9a-f]{32})", out)
    assert found, out
    return found.group(1)


def advance(t: Tenant, seconds: float) -> None:
    assert t.client.post("/sim/v1/clock/advance", json={"seconds": seconds}).status_code == 200


def test_answer_transfer_and_hang_up_by_prefix(vserver: ServerThread, t: Tenant) -> None:
    code, out = run(vserver, t, "call", "incoming", "--from", CLIENT, "--to", MAIN)
    assert code == 0, out
    callid = callid_in(out)
    short = callid[:8]

    code, out = run(vserver, t, "calls")
    assert code == 0, out
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert short in out and CLIENT in out and MAIN in out and "ringing" in out and "admin ringing" in out
    assert callid not in out  # the short id only (``--wide`` for the whole)
    code, out = run(vserver, t, "calls", "--wide")
    assert code == 0 and callid in out

    code, out = run(vserver, t, "call", "answer", short, "--user", "admin")
    assert code == 0, out
    assert f"call {callid} talking: " in out and "admin talking" in out
    assert t.client.get(f"/sim/v1/calls/{callid}").json()["answered_by"] == "admin"

    code, out = run(vserver, t, "call", "transfer", short, "--user", "admin", "--to", "704")  # manager's ext
    assert code == 0, out
    second = callid_in(out)
    assert second != callid and "manager ringing" in out
    code, out = run(vserver, t, "call", "answer", second[:10], "-u", "manager")
    assert code == 0 and "manager talking" in out, out
    code, out = run(vserver, t, "call", "hangup", second, "--by", "manager")
    assert code == 0 and f"call {second} ended: Success" in out, out

    code, out = run(vserver, t, "call", "show", second)
    assert code == 0 and "answered_by: manager" in out and "event ACCEPTED manager" in out, out
    code, out = run(vserver, t, "call", "hangup", second)
    assert code == 1 and "409" in out  # the call is over


def test_dtmf_and_reject(vserver: ServerThread, t: Tenant) -> None:
    code, out = run(vserver, t, "call", "incoming", "--from", CLIENT, "--to", SPB)
    assert code == 0, out
    callid = callid_in(out)
    advance(t, 10)  # the greeting
    code, out = run(vserver, t, "call", "dtmf", callid[:8], "2")
    assert code == 0, out
    view = t.client.get(f"/sim/v1/calls/{callid}").json()
    assert view["group"] == "support" and view["state"] == "ringing"
    ringing = [leg["party"] for leg in view["legs"] if leg["state"] == "ringing"]
    assert ringing and f"{ringing[0]} ringing" in out
    code, out = run(vserver, t, "call", "reject", callid[:8], "--user", ringing[0])
    assert code == 0, out
    legs = {leg["party"]: leg["state"] for leg in t.client.get(f"/sim/v1/calls/{callid}").json()["legs"]}
    assert legs.get(ringing[0]) != "ringing"
    code, out = run(vserver, t, "call", "hangup", callid[:8])
    assert code == 0 and f"call {callid} ended" in out, out


def test_unknown_and_ambiguous_ids(vserver: ServerThread, t: Tenant) -> None:
    code, out = run(vserver, t, "call", "answer", "ffffffff", "--user", "admin")
    assert code == 1 and "404" in out
    ids: list[str] = []
    while len(ids) < 20:  # until two live calls share a first hex digit (certain within 17)
        code, out = run(vserver, t, "call", "incoming", "--from", CLIENT, "--to", MAIN)
        ids.append(callid_in(out))
        firsts = [i[0] for i in ids]
        if len(set(firsts)) < len(firsts):
            break
    shared = next(c for c in ids if [i[0] for i in ids].count(c[0]) > 1)[0]
    code, out = run(vserver, t, "call", "hangup", shared)
    assert code == 2 and f"live calls start with {shared}" in out, out
    for callid in ids:
        t.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})


def test_calls_fit_100_columns_with_long_names(vserver: ServerThread, t: Tenant) -> None:
    for n in range(3):
        run(vserver, t, "call", "incoming", "--from", f"7910123456{n}", "--to", MAIN)
    code, out = run(vserver, t, "calls")
    assert code == 0 and "3 live calls" in out, out
    assert max(len(line) for line in out.splitlines()) <= 100, out


def test_deliveries_list_defaults_to_the_demo_domain(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    result = CliRunner().invoke(cli.app, ["deliveries", "list", *home])
    assert result.exit_code == 1 and "no domain demo.vpbx.local" in result.output  # not created yet
    assert CliRunner().invoke(cli.app, ["domain", "create", "demo.vpbx.local", *home]).exit_code == 0
    result = CliRunner().invoke(cli.app, ["deliveries", "list", *home])
    assert result.exit_code == 0, result.output
    assert "demo.vpbx.local: 0 of 0 deliveries" in result.output
    result = CliRunner().invoke(cli.app, ["deliveries", "replay", "1", *home])
    assert result.exit_code == 1 and "not found" in result.output.lower(), result.output


def test_sim_run_plays_on_a_scratch_server_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --url: every example plays on a virtual-clock server with a temporary store (seconds, not the 22
    minutes of real sleeps), and nothing is left behind: no store here, no running server touched."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VPBX_OPERATOR_KEY", raising=False)
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    began = time.monotonic()
    result = CliRunner().invoke(cli.app, ["sim", "run", *files])
    took = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert "playing on a scratch server" in result.output
    assert f"{len(files)} of {len(files)} scenarios passed" in result.output and "✘" not in result.output
    assert took < 180  # minutes of scenario time on the virtual clock
    assert list(tmp_path.iterdir()) == []
