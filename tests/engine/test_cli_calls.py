"""``vpbx call incoming`` and ``vpbx calls`` against a running server (the engine's test server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpbx.cli import app
from vpbx.testing.server import ServerThread, Tenant

NUMBER = "74951234567"  # the demo company's main number: sales, BYORDER
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_incoming_call_then_the_live_calls_table(vserver: ServerThread, vtenant: Tenant) -> None:
    vtenant.client.put("/sim/v1/devices/admin", json={"registered": True})
    code, out = run("call", "incoming", "--from", "79101234567", "--to", NUMBER, "--url", vserver.url,
                    "--key", vtenant.api_key)
    assert code == 0, out
    assert out.startswith("call ") and "ringing: admin ringing" in out
    callid = out.split()[1]
    live = vtenant.client.get("/sim/v1/calls").json()
    assert [c["callid"] for c in live] == [callid]
    code, out = run("calls", "--url", vserver.url, "--key", vtenant.api_key)
    assert code == 0, out
    assert "1 live call" in out and callid[:8] in out and "79101234567" in out and "admin ringing" in out
    assert "sales" in out
    code, out = run("calls", "--wide", "--url", vserver.url, "--key", vtenant.api_key)
    assert code == 0 and callid in out
    vtenant.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"})
    code, out = run("calls", "--url", vserver.url, "--key", vtenant.api_key)
    assert "talking" in out and "admin talking" in out
    vtenant.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})
    code, out = run("calls", "--url", vserver.url, "--key", vtenant.api_key)
    assert code == 0 and "no live calls" in out and callid[:8] not in out


def test_refused_and_errors(vserver: ServerThread, vtenant: Tenant) -> None:
    code, out = run("call", "incoming", "--from", "79101234567", "--to", "74990000000", "--url", vserver.url,
                    "--key", vtenant.api_key)
    assert code == 0 and "refused: unknown number" in out
    code, out = run("call", "incoming", "--from", "12", "--to", NUMBER, "--url", vserver.url,
                    "--key", vtenant.api_key)
    assert code == 1 and "400 Validation error (from: not a phone number)" in out
    code, out = run("calls", "--url", vserver.url, "--key", "wrong-key")
    assert code == 1 and "401" in out
    code, out = run("calls", "--url", "http://127.0.0.1:9", "--key", vtenant.api_key)
    assert code == 1 and "cannot reach" in out


def test_key_defaults_to_the_demo_credentials(vserver: ServerThread, vtenant: Tenant, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VPBX_API_KEY", raising=False)
    code, out = run("calls", "--url", vserver.url)
    assert code == 2 and "demo-credentials.json" in out
    (tmp_path / ".vpbx").mkdir()
    (tmp_path / ".vpbx" / "demo-credentials.json").write_text(json.dumps(
        {"domain": vtenant.name, "api_key": vtenant.api_key, "legacy_token": vtenant.legacy_token}))
    code, out = run("calls", "--url", vserver.url)
    assert code == 0 and "no live calls" in out
