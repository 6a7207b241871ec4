"""``vpbx call outgoing``, ``vpbx sim traffic`` and ``vpbx sim run`` against a loopback server on the virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from tests.cli.conftest import run
from tests.engine.test_incoming import Crm
from typer.testing import CliRunner

from vpbx import cli
from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant, create_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
CLIENT = "79101234567"


@pytest.fixture
def t(vserver: ServerThread) -> Iterator[Tenant]:
    tenant = create_tenant(vserver)
    yield tenant
    tenant.client.close()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=300, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=300, stderr=True))
    monkeypatch.delenv("VPBX_API_KEY", raising=False)


def test_call_outgoing(vserver: ServerThread, t: Tenant) -> None:
    assert t.client.post("/crmapi/v1/caller-ids/main", json={"telnum": "74951234567"}).status_code == 204
    code, out = run(vserver, t, "call", "outgoing", "--from", "admin", "--to", CLIENT)
    assert code == 0, out
    assert out.startswith("call ") and f"ringing via 74951234567: admin talking, ext:{CLIENT} ringing" in out
    callid = out.split()[1]
    view = t.client.get(f"/sim/v1/calls/{callid}").json()
    assert (view["kind"], view["from"], view["to"]) == ("outgoing", "admin", CLIENT)
    t.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "admin"})
    code, out = run(vserver, t, "call", "outgoing", "--from", "user:704", "--to", "+49 30 123456789")
    assert code == 0 and "ended: NotAllowed" in out  # EURO: not in a new domain's rules
    code, out = run(vserver, t, "call", "outgoing", "--from", "nobody", "--to", CLIENT)
    assert code == 1 and "404 Not found" in out
    code, out = run(vserver, t, "call", "outgoing", "--from", "admin", "--to", "no number")
    assert code == 1 and "400 Validation error (to: not a phone number)" in out


def test_sim_traffic_drives_a_virtual_clock_to_the_end(vserver: ServerThread, t: Tenant) -> None:
    code, out = run(vserver, t, "sim", "traffic", "--cpm", "12", "--minutes", "3", "--seed", "5",
                    "--number", "74951234567", "--answer-probability", "1")
    assert code == 0, out
    assert f"traffic on {vserver.url}: 12 calls/min for 3 min, seed 5 (advancing the virtual clock)" in out
    final = t.client.get("/sim/v1/traffic").json()
    assert final["state"] == "done" and final["placed"] > 0 and final["live"] == 0
    assert final["config"]["numbers"] == ["74951234567"] and final["config"]["answer_probability"] == 1
    assert out.rstrip().endswith(f"traffic done: placed {final['placed']} · answered {final['answered']} · "
                                 f"missed {final['missed']} · live 0 (seed 5)")
    assert "100%" in out
    # the same seed again: the same counts
    code, again = run(vserver, t, "sim", "traffic", "--cpm", "12", "--minutes", "3", "--seed", "5",
                      "--number", "74951234567", "--answer-probability", "1")
    assert code == 0 and again.rstrip().splitlines()[-1] == out.rstrip().splitlines()[-1]


def test_sim_traffic_ctrl_c_stops_the_run(vserver: ServerThread, t: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    polls: list[float] = []

    def interrupted(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_pause", interrupted)
    code, out = run(vserver, t, "sim", "traffic", "--cpm", "60", "--minutes", "10", "--no-advance")
    assert code == 130, out
    assert "traffic stopped: placed 0" in out and polls == [cli.TRAFFIC_POLL, cli.TRAFFIC_POLL]
    assert t.client.get("/sim/v1/traffic").json()["state"] == "stopped"


def test_sim_traffic_errors(vserver: ServerThread, t: Tenant) -> None:
    assert t.client.post("/sim/v1/traffic", json={"calls_per_minute": 1, "duration_s": 600}).status_code == 201
    code, out = run(vserver, t, "sim", "traffic", "--cpm", "5", "--minutes", "1")
    assert code == 1 and "409 A traffic run is already running on this domain" in out
    t.client.delete("/sim/v1/traffic")
    code, out = run(vserver, t, "sim", "traffic", "--cpm", "0", "--minutes", "1")
    assert code == 1 and "400 Validation error" in out
    result = CliRunner().invoke(cli.app, ["sim", "traffic", "--url", "http://127.0.0.1:9", "--key", "k"])
    assert result.exit_code == 1 and "cannot reach" in result.output


@pytest.fixture
def crm_domain(vserver: ServerThread, t: Tenant) -> Iterator[Tenant]:
    crm = Crm(vserver)
    vserver.call(crm.start())

    async def work() -> None:
        async with vserver.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, t.name)
            await tenancy.set_integration(session, domain, crm_url=f"http://127.0.0.1:{crm.port}/crm",
                                          crm_token="tok")
            await session.commit()

    vserver.call(work())
    yield t
    vserver.call(crm.stop())


def test_sim_run_plays_scenarios(vserver: ServerThread, crm_domain: Tenant) -> None:
    files = [str(EXAMPLES / "01-sales-answers.yaml"), str(EXAMPLES / "05-outgoing-busy.yaml")]
    code, out = run(vserver, crm_domain, "sim", "run", *files)
    assert code == 0, out
    assert "Incoming call answered by a department, then rated" in out
    assert "  ✔ setup users (andy, kate)" in out
    assert "  ✔  1 call 79101234567 → 74951234567 as first (ringing: andy ringing, kate ringing)" in out
    assert '✔  2 expect call first: state ringing, ringing ["andy", "kate"]' in out  # markup-like text kept
    assert "✘" not in out and "2 of 2 scenarios passed" in out
    assert out.count("0 failed") == 2


def test_sim_run_fails_on_a_wrong_expectation(vserver: ServerThread, crm_domain: Tenant, tmp_path: Path) -> None:
    text = (EXAMPLES / "01-sales-answers.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text.replace("{event: CANCELLED, user: kate}", "{event: CANCELLED, user: andy}"),
                     encoding="utf-8")
    code, out = run(vserver, crm_domain, "sim", "run", str(wrong), str(EXAMPLES / "05-outgoing-busy.yaml"))
    assert code == 1, out
    assert "  ✘ 11 expect CRM requests of first" in out
    assert "CRM requests of first: request 4 is event CANCELLED" in out and "user andy instead of kate" not in out
    assert "user kate instead of andy" in out
    assert "15 passed, 1 failed, 1 not played" in out
    assert "Outgoing calls, busy and unanswered" not in out  # stops at the first failing scenario
    assert "0 of 2 scenarios passed (stopped at the first failing one)" in out
    code, out = run(vserver, crm_domain, "sim", "run", "--keep-going", str(wrong),
                    str(EXAMPLES / "05-outgoing-busy.yaml"))
    assert code == 1 and "16 passed, 1 failed\n" in out and "1 of 2 scenarios passed\n" in out


def test_sim_run_refuses_a_malformed_file(vserver: ServerThread, t: Tenant, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - dance: {}\n", encoding="utf-8")
    code, out = run(vserver, t, "sim", "run", str(bad))
    assert code == 2 and f"{bad}: step 1: one action of" in out
    code, out = run(vserver, t, "sim", "run", str(tmp_path / "absent.yaml"))
    assert code == 2 and "does not exist" in out
    good = tmp_path / "good.yaml"
    good.write_text("steps: [{wait: 1}]\n", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["sim", "run", str(good), "--url", "http://127.0.0.1:9", "--key", "k"])
    assert result.exit_code == 1 and "✘ connect" in result.output and "cannot reach the server" in result.output
    assert "0 passed, 1 failed, 1 not played" in result.output
