"""Structured logs (``vpbx.logs``): every request (method, path, status, ms, domain), every configuration change
(who, what), every call's start and end, every CRM delivery attempt and its outcome, never a key, token,
password or signed link; ``vpbx serve --log-json`` writes them as JSON lines, ``--log-level`` filters them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from tests.conftest import store_url

from vpbx import logs
from vpbx.bootstrap import read_credentials
from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant, free_port

SECRET_PATH = "hook-s3cr3t-path"
SECRET_QUERY = "s3cr3t-query"
CRM_TOKEN = "crm-t0ken-s3cr3t"


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging.getLogger("vpbx"), "propagate", True)  # serve's configure() turns it off
    caplog.set_level(logging.INFO, logger="vpbx")
    return caplog

TIMEOUT = 60  # seconds: the machine may be loaded



def fields(caplog: pytest.LogCaptureFixture, message: str, **match: Any) -> list[dict[str, Any]]:
    out = []
    for record in list(caplog.records):
        data = json.loads(logs.JsonFormatter().format(record))
        if data["msg"] == message and all(data.get(k) == v for k, v in match.items()):
            out.append(data)
    return out


def wait_for(caplog: pytest.LogCaptureFixture, message: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fields(caplog, message, **match)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {message!r} {match} in {everything(caplog)}")


def everything(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(logs.JsonFormatter().format(r) for r in list(caplog.records))


def test_requests_are_logged_with_their_domain(records: pytest.LogCaptureFixture, tenant: Tenant) -> None:
    assert tenant.client.get("/crmapi/v1/users", params={"limit": 5}).status_code == 200
    assert tenant.client.get("/crmapi/v1/groups").status_code == 200
    for path in ("/crmapi/v1/users", "/crmapi/v1/groups"):
        line = wait_for(records, "request", path=path, domain=tenant.name)
        assert line["method"] == "GET" and line["status"] == 200 and isinstance(line["ms"], float)
        assert isinstance(line["key_id"], int) and line["logger"] == "vpbx.access"
    r = httpx.get(tenant.client.base_url.join("/crmapi/v1/users"), headers={"X-API-KEY": "wrong-key-s3cr3t"},
                  timeout=TIMEOUT)
    assert r.status_code == 401
    line = wait_for(records, "request", path="/crmapi/v1/users", status=401)
    assert "domain" not in line
    text = everything(records)
    assert tenant.api_key not in text and "wrong-key-s3cr3t" not in text and "limit" not in text


def test_legacy_tokens_and_recording_links_stay_out(records: pytest.LogCaptureFixture, tenant: Tenant) -> None:
    base = tenant.client.base_url
    httpx.get(base.join("/sys/crm_api.wcgp"), params={"cmd": "accounts", "token": tenant.legacy_token}, timeout=TIMEOUT)
    httpx.get(base.join("/records/s3cr3t-signed-link"), timeout=TIMEOUT)
    wait_for(records, "request", path="/sys/crm_api.wcgp", cmd="accounts")
    wait_for(records, "request", path="/records/***")
    text = everything(records)
    assert tenant.legacy_token not in text and "s3cr3t-signed-link" not in text


def test_configuration_changes_say_who_and_what(records: pytest.LogCaptureFixture, tenant: Tenant) -> None:
    r = tenant.client.post("/crmapi/v1/users", json={"name": "Журнал Проверкин"})
    assert r.status_code == 200, r.text
    login = r.json()["login"]
    assert tenant.client.put(f"/crmapi/v1/users/{login}", json={"position": "Тестировщик"}).status_code == 200
    assert tenant.client.delete(f"/crmapi/v1/users/{login}").status_code == 204
    assert tenant.client.post("/crmapi/v1/users", json={"ext": "not an ext"}).status_code == 400
    for method, path in (("POST", "/crmapi/v1/users"), ("PUT", f"/crmapi/v1/users/{login}"),
                         ("DELETE", f"/crmapi/v1/users/{login}")):
        change = wait_for(records, "configuration changed", method=method, path=path)
        assert change["domain"] == tenant.name and isinstance(change["key_id"], int) and change["role"] == "full"
        assert change["logger"] == "vpbx.audit"
    assert len(fields(records, "configuration changed", method="POST", path="/crmapi/v1/users",
                      domain=tenant.name)) == 1  # the refused one changed nothing
    assert tenant.client.get("/crmapi/v1/users").status_code == 200
    assert not fields(records, "configuration changed", method="GET")


def test_legacy_changes_are_audited_too(records: pytest.LogCaptureFixture, tenant: Tenant) -> None:
    """A form POST: the command is in the body, the token too; the log names the command, never the token."""
    r = httpx.post(tenant.client.base_url.join("/sys/crm_api.wcgp"), timeout=TIMEOUT,
                   data={"cmd": "set_dnd", "user": "admin", "state": "true", "token": tenant.legacy_token})
    assert r.status_code == 200, r.text
    line = wait_for(records, "request", path="/sys/crm_api.wcgp", cmd="set_dnd", domain=tenant.name)
    assert line["method"] == "POST" and line["status"] == 200 and "key_id" not in line
    change = wait_for(records, "configuration changed", cmd="set_dnd", domain=tenant.name)
    assert change["role"] == "legacy token" and change["path"] == "/sys/crm_api.wcgp"
    r = httpx.post(tenant.client.base_url.join("/sys/crm_api.wcgp"), timeout=TIMEOUT,
                   data={"cmd": "get_dnd", "user": "admin", "token": tenant.legacy_token})
    assert r.status_code == 200
    wait_for(records, "request", cmd="get_dnd", domain=tenant.name)
    assert not fields(records, "configuration changed", cmd="get_dnd")  # a read changes nothing
    assert tenant.legacy_token not in everything(records)


def test_calls_start_and_end(records: pytest.LogCaptureFixture, tenant: Tenant) -> None:
    r = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": "74951234567"})
    assert r.status_code == 201, r.text
    callid = r.json()["callid"]
    assert tenant.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"}).status_code == 200
    started = wait_for(records, "call started", callid=callid)
    ended = wait_for(records, "call ended", callid=callid)
    for line in (started, ended):
        assert (line["domain"], line["direction"], line["from"], line["to"]) == (
            tenant.name, "incoming", "79101234567", "74951234567")
    assert ended["status"] in ("Missed", "Cancel")


def test_every_delivery_attempt_and_its_outcome(records: pytest.LogCaptureFixture, server: ServerThread,
                                                tenant: Tenant) -> None:
    """The CRM's URL is logged as scheme and host only (CRMs put tokens in paths and queries)."""
    url = f"http://127.0.0.1:9/{SECRET_PATH}?token={SECRET_QUERY}"

    async def work() -> int:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            await tenancy.set_integration(session, domain, crm_url=url, crm_token=CRM_TOKEN)
            await session.commit()
            return domain.id

    domain_id = server.call(work())
    r = tenant.client.post("/sim/v1/calls", json={"from": "79101234568", "to": "74951234567"})
    assert r.status_code == 201, r.text
    tenant.client.post(f"/sim/v1/calls/{r.json()['callid']}/hangup", json={"by": "client"})
    line = wait_for(records, "crm delivery", domain_id=domain_id, command="event")  # the history waits behind it
    assert line["crm"] == "http://127.0.0.1:9" and line["attempt"] >= 1
    assert line["state"] in ("pending", "failed") and line["error"] and line["http_status"] is None
    assert line["logger"] == "vpbx.deliveries" and isinstance(line["outbox_id"], int)
    text = everything(records)
    assert SECRET_PATH not in text and SECRET_QUERY not in text and CRM_TOKEN not in text


def test_log_level_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger("vpbx")
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(root, "propagate", root.propagate)
    uv = logging.getLogger("uvicorn")
    monkeypatch.setattr(uv, "handlers", list(uv.handlers))
    monkeypatch.setattr(uv, "level", uv.level)
    monkeypatch.setattr(uv, "propagate", uv.propagate)
    logs.configure("warning", json=True)
    assert not logs.access.isEnabledFor(logging.INFO) and logs.deliveries.isEnabledFor(logging.WARNING)
    logs.configure("debug")
    assert logs.calls.isEnabledFor(logging.DEBUG)
    with pytest.raises(ValueError, match="log level"):
        logs.configure("chatty")


# --- the real command ----------------------------------------------------------------------------------


@pytest.fixture
def served(backend: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], dict[str, Any], str]]:
    """``vpbx serve --log-json`` in its own process on a fresh store; on PostgreSQL the store URL carries a
    password (the test server trusts loopback, so it is not checked) that must never be printed."""
    db = store_url(backend, tmp_path)
    if backend == "postgres":
        db = make_url(db).set(password="pg-s3cr3t-pw").render_as_string(hide_password=False)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPBX_")}
    env["VPBX_DB"] = db
    proc = subprocess.Popen([sys.executable, "-m", "vpbx.cli", "serve", "--home", str(tmp_path), "--port", str(port),
                             "--log-json", "--log-level", "info", "--allow-private-crm"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=TIMEOUT).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=5)
            time.sleep(0.2)
        creds = read_credentials(tmp_path)
        assert creds
        yield url, proc, creds, db
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


def test_serve_writes_json_lines_without_secrets(served: tuple[str, subprocess.Popen[str], dict[str, Any], str]
                                                 ) -> None:
    url, proc, creds, db = served
    with httpx.Client(base_url=url, headers={"X-API-KEY": creds["api_key"]}, timeout=TIMEOUT) as http:
        assert http.get("/crmapi/v1/users").status_code == 200
        assert http.post("/crmapi/v1/users", json={"name": "Новичок"}).status_code == 200
        call = http.post("/sim/v1/calls", json={"from": "79101234567", "to": "74951234567"}).json()
        http.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})
    httpx.get(url + "/sys/crm_api.wcgp", params={"cmd": "accounts", "token": creds["legacy_token"]}, timeout=TIMEOUT)
    proc.terminate()
    out, errors = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in errors.splitlines() if line.strip()]  # every line is JSON
    messages = {(line["logger"], line["msg"]) for line in lines}
    assert {("vpbx", "serving"), ("vpbx.access", "request"), ("vpbx.audit", "configuration changed"),
            ("vpbx.calls", "call started"), ("vpbx.calls", "call ended")} <= messages, messages
    request = next(line for line in lines if line["msg"] == "request" and line["path"] == "/crmapi/v1/users")
    assert request["domain"] == creds["domain"] and request["status"] == 200
    assert "vpbx serving on" in out and "/docs" in out
    password = make_url(db).password
    if password:
        assert password not in out and password not in errors
    # The banner shows the demo domain's key and token on purpose (stdout, for the newcomer); logs never do.
    assert creds["api_key"] not in errors and creds["legacy_token"] not in errors
