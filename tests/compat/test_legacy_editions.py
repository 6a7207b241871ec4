"""Issue 13 rules 5 and 6: the legacy API's two editions, 000 and 001/004, as a per-integration setting (CLI, the
``/crmapi/v1/integration`` extension); each edition's makeCall answer and pushes carry exactly its documented
fields (read by strict clients of each); ``subscribeOnCalls`` and ``set_dnd`` answer 200 ``OK`` in both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from tests.compat.clients import Legacy000, Legacy004, Refused
from tests.compat.conftest import CLIENT, SALES_NUMBER, Env
from typer.testing import CliRunner, Result

from vpbx import cli
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread

PATH = "/sys/crm_api.wcgp"


def legacy(env: Env, **params: str) -> httpx.Response:
    return env.http.post(PATH, data={**params, "token": env.t.legacy_token})


# --- rule 5 ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["legacy-000", "legacy-004"])
def test_subscribe_on_calls_and_set_dnd_answer_ok(configure: Callable[[str], Env], client: str) -> None:
    env = configure(client)
    for params in ({"cmd": "subscribeOnCalls", "user": "ivan", "group_id": "sales", "status": "off"},
                   {"cmd": "subscribeoncalls", "user": "ivan", "group": "sales", "status": "on"},
                   {"cmd": "subscribeoncalls", "user": "ivan", "status": "off"},
                   {"cmd": "set_dnd", "user": "ivan", "state": "true"},
                   {"cmd": "set_dnd", "user": "ivan", "state": "false"}):
        r = legacy(env, **params)
        assert (r.status_code, r.text) == (200, "OK"), params
    assert legacy(env, cmd="get_dnd", user="ivan").json() == {"state": False}
    assert legacy(env, cmd="subscriptionStatus", user="ivan", group="sales").json() == {"status": "off"}
    r = legacy(env, cmd="set_dnd", user="nobody", state="true")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid parameters"})


# --- rule 6: makeCall -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("client", "key"), [("legacy-000", "CallID"), ("legacy-004", "uuid")])
def test_make_call_answers_the_editions_field(configure: Callable[[str], Env], client: str, key: str) -> None:
    env = configure(client)
    r = legacy(env, cmd="makeCall", user="ivan", phone=CLIENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {key}  # a strict client of the other edition refuses the extra key
    assert env.http.get(f"/sim/v1/calls/{body[key]}").status_code == 200  # the call exists


# --- rule 6: pushes -----------------------------------------------------------------------------------------------

def _answered_incoming(env: Env) -> str:
    callid = env.dial(to=SALES_NUMBER)
    (leg,) = [leg for leg in env.call(callid)["legs"] if leg["state"] == "ringing"]
    env.act(callid, "answer", user=leg["party"])
    env.advance(30)
    env.act(callid, "hangup", by="client")
    return callid


def test_000_pushes(configure: Callable[[str], Env]) -> None:
    env = configure("legacy-000")
    callid = _answered_incoming(env)
    hist = env.history_push(callid)  # parsed by the strict 000 client
    assert hist["type"] == "in" and hist["status"] == "Success" and hist["groupRealName"]
    events = env.wait_for("event", callid, count=3)
    assert [(e["type"], e["direction"]) for e in events] == [("INCOMING", "in"), ("ACCEPTED", "in"),
                                                             ("COMPLETED", "in")]
    with pytest.raises(Refused):  # a 004 client refuses them: direction is not in its list
        Legacy004().parse(next(r for r in env.crm.got if r.cmd == "event"))


def test_004_pushes(configure: Callable[[str], Env]) -> None:
    env = configure("legacy-004")
    callid = _answered_incoming(env)
    hist = env.history_push(callid)  # parsed by the strict 004 client
    assert hist["type"] == "in" and hist["status"] == "Success"
    events = env.wait_for("event", callid, count=3)
    assert [e["type"] for e in events] == ["INCOMING", "ACCEPTED", "COMPLETED"]
    assert all("direction" not in e for e in events)
    with pytest.raises(Refused):  # a 000 client needs direction
        Legacy000().parse(next(r for r in env.crm.got if r.cmd == "event"))


@pytest.mark.parametrize("client", ["legacy-000", "legacy-004"])
def test_outgoing_call_pushes(configure: Callable[[str], Env], client: str) -> None:
    """004 §4.1.2 tells of incoming calls' events only (an event without direction reads as incoming): the 004
    edition sends an outgoing call's history but none of its events; 000 sends OUTGOING/ACCEPTED/COMPLETED."""
    env = configure(client)
    env.http.put(f"/sim/v1/externals/{CLIENT}", json={"auto": {"action": "answer", "after": 2, "talk": 10}})
    callid = env.dial(frm="user:manager", to=CLIENT)
    env.advance(12)
    hist = env.history_push(callid)
    assert (hist["type"], hist["status"], hist["user"], hist["duration"]) == ("out", "Success", "manager", 12)
    events = env.requests("event", callid)
    if client == "legacy-000":
        assert [(e["type"], e["direction"]) for e in env.wait_for("event", callid, count=3)] == [
            ("OUTGOING", "out"), ("ACCEPTED", "out"), ("COMPLETED", "out")]
    else:
        assert events == []


@pytest.mark.parametrize("client", ["legacy-000", "legacy-004"])
def test_missed_call_pushes(configure: Callable[[str], Env], client: str) -> None:
    env = configure(client)
    callid = env.dial(to=SALES_NUMBER)
    env.advance(4)
    env.act(callid, "hangup", by="client")
    hist = env.history_push(callid)
    assert hist["status"].casefold() == "missed" and hist["duration"] == 4
    events = env.wait_for("event", callid, count=2)
    assert [e["type"] for e in events] == ["INCOMING", "CANCELLED"]


# --- rule 6: the setting ----------------------------------------------------------------------------------------

def test_edition_through_the_api_extension(env: Env) -> None:
    c = env.http
    assert c.get("/crmapi/v1/integration").json()["legacy_edition"] == "000"  # the default
    assert c.put("/crmapi/v1/integration", json={"legacy_edition": "004"}).status_code == 204
    got = c.get("/crmapi/v1/integration").json()
    assert got["legacy_edition"] == "004" and got["crm_url"] == env.crm.url and "crm_token" not in got
    assert set(legacy(env, cmd="makeCall", user="ivan", phone=CLIENT).json()) == {"uuid"}
    assert c.put("/crmapi/v1/integration", json={"legacy_edition": "001"}).status_code == 204  # 004's short form
    assert c.get("/crmapi/v1/integration").json()["legacy_edition"] == "004"
    r = c.put("/crmapi/v1/integration", json={"legacy_edition": "005"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "legacy_edition"
    assert c.put("/crmapi/v1/integration", json={"legacy_edition": "000"}).status_code == 204
    assert set(legacy(env, cmd="makeCall", user="ivan", phone=CLIENT).json()) == {"CallID"}
    doc = httpx.get(f"{env.server.url}/openapi.json", timeout=30).json()
    put = doc["paths"]["/crmapi/v1/integration"]["put"]
    assert "vpbx extension" in put["summary"]
    out = doc["components"]["schemas"]["IntegrationOut"]
    assert out["properties"]["legacy_edition"]["enum"] == ["000", "004"]


def test_edition_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=300, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=300, stderr=True))
    monkeypatch.delenv("VPBX_DB", raising=False)
    monkeypatch.delenv("VPBX_HOME", raising=False)
    home = tmp_path / "home"
    key = "compat-cli-key-0123456789abcdef"

    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli.app, [*args, "--home", str(home)], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    run("domain", "create", "ed.vpbx.test", "--api-key", key, "--no-demo-data")
    assert "legacy edition=000" in run("domain", "show", "ed.vpbx.test").output
    out = run("integration", "set", "--domain", "ed.vpbx.test", "--edition", "004").output
    assert "edition=004" in out
    assert "legacy edition=004" in run("domain", "show", "ed.vpbx.test").output
    assert "legacy_edition" in run("integration", "set", "--domain", "ed.vpbx.test", "--edition", "2", code=1).output
    srv = ServerThread(Settings(home=home, demo=False, port=0)).start()
    try:
        r = httpx.get(f"{srv.url}/crmapi/v1/integration", headers={"X-API-KEY": key}, timeout=30)
        assert (r.status_code, r.json()["legacy_edition"]) == (200, "004")
    finally:
        srv.stop()
