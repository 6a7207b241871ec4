"""The ``vpbx`` command: the operator's domain, key and integration commands, and ``vpbx serve``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from vpbx import cli
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, free_port

KEY = "cli-test-key-0123456789abcdef"
NAME = "acme.vpbx.test"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Wide enough that rich neither wraps keys nor truncates table cells.
    monkeypatch.setattr(cli, "console", Console(width=300, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=300, stderr=True))
    monkeypatch.delenv("VPBX_DB", raising=False)
    monkeypatch.delenv("VPBX_HOME", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run(home: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli.app, [*args, "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def server_on(home: Path) -> Iterator[ServerThread]:
    """A server over the store the CLI wrote (started on demand by the test)."""
    srv = ServerThread(Settings(home=home, demo=False, port=0))
    yield srv
    if srv._thread.ident is not None:  # started
        srv.stop()


def api(srv: ServerThread, key: str, path: str = "/crmapi/v1/users") -> httpx.Response:
    return httpx.get(f"{srv.url}{path}", headers={"X-API-KEY": key}, timeout=30)


def test_domain_and_keys(home: Path, server_on: ServerThread) -> None:
    out = run(home, "domain", "create", NAME, "--api-key", KEY, "--legacy-token", "legacy-tok").output
    assert f"domain {NAME} created" in out
    assert f"API key: {KEY}" in out
    assert "legacy token: legacy-tok" in out
    # the same name again is a clean error
    assert "exists" in run(home, "domain", "create", NAME, code=1).output

    created = run(home, "key", "create", "--domain", NAME, "--label", "crm").output.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", created), created
    own = run(home, "key", "create", "--domain", NAME, "--api-key", "second-key-0123456789", "--role", "user").output
    assert own.strip() == "second-key-0123456789"
    assert run(home, "key", "create", "--domain", NAME, "--role", "nope", code=1).exit_code == 1
    assert run(home, "key", "create", "--domain", NAME, "--api-key", "short", code=1).exit_code == 1

    listing = run(home, "key", "list", "--domain", NAME).output
    assert KEY[:6] in listing and created[:6] in listing and "second" in listing
    assert "crm" in listing and "initial" in listing
    assert listing.count("active") == 3
    assert KEY not in listing  # only prefixes are shown

    assert "revoked 1 key(s)" in run(home, "key", "revoke", "--domain", NAME, created[:6]).output
    assert run(home, "key", "list", "--domain", NAME).output.count("revoked") == 1
    assert run(home, "key", "revoke", "--domain", NAME, created[:6], code=1).exit_code == 1

    server_on.start()
    r = api(server_on, KEY)
    assert r.status_code == 200
    assert r.json()["info"]["total"] == 10  # the demo company by default
    assert api(server_on, created).json() == {"message": "Invalid token"}
    # the 'user' role key reads employees but not the domain's settings
    assert api(server_on, "second-key-0123456789").status_code == 200
    assert api(server_on, "second-key-0123456789", "/crmapi/v1/domain").status_code == 403


def test_integration_set(home: Path, server_on: ServerThread) -> None:
    run(home, "domain", "create", NAME, "--api-key", KEY, "--no-demo-data")
    out = run(home, "integration", "set", "--domain", NAME, "--crm-url", "https://crm.example.com/hook",
              "--crm-token", "t0k", "--dialect", "json").output
    assert "integration on: url=https://crm.example.com/hook dialect=json" in out
    assert run(home, "integration", "set", "--domain", NAME, "--dialect", "xml", code=1).exit_code == 1
    assert run(home, "integration", "set", "--domain", NAME, "--crm-url", "ftp://x", code=1).exit_code == 1
    assert "integration off" in run(home, "integration", "set", "--domain", NAME, "--off").output
    show = run(home, "domain", "show", NAME).output
    assert "integration: off" in show and "dialect=json" in show

    server_on.start()
    r = api(server_on, KEY)
    assert (r.status_code, r.json()) == (401, {"message": "CRM disabled"})
    run(home, "integration", "set", "--domain", NAME, "--on")
    server_on.runtime.auth.clear()
    r = api(server_on, KEY)
    assert (r.status_code, r.json()["info"]["total"]) == (200, 0)  # --no-demo-data: empty


def test_domain_list_show_delete(home: Path) -> None:
    run(home, "domain", "create", NAME, "--api-key", KEY)
    run(home, "domain", "create", "second.vpbx.test", "--no-demo-data", "--timezone", "Asia/Yekaterinburg")
    assert run(home, "domain", "create", "third.test", "--timezone", "Mars/Olympus", code=1).exit_code == 1

    listing = run(home, "domain", "list").output
    assert NAME in listing and "second.vpbx.test" in listing and "third.test" not in listing
    assert re.search(rf"{re.escape(NAME)}\s*│\s*Europe/Moscow\s*│\s*10\s*│\s*3\s*│", listing), listing
    assert re.search(r"second\.vpbx\.test\s*│\s*Asia/Yekaterinburg\s*│\s*0\s*│\s*0\s*│", listing)

    run(home, "domain", "limits", NAME, "--users", "15", "--groups", "7")
    show = run(home, "domain", "show", NAME).output
    compact = re.sub(r"\s+", "", show)
    assert '"users":{"used":10,"total":15}' in compact
    assert '"groups":{"used":3,"total":7}' in compact
    assert '"timezone":{"name":"Europe/Moscow","offset":180}' in compact
    assert "integration: on" in show
    assert re.search(rf"key #\d+ {re.escape(KEY[:6])}… role=full active", show)

    assert f"domain {NAME} deleted" in run(home, "domain", "delete", NAME, "--yes").output
    assert NAME not in run(home, "domain", "list").output
    assert run(home, "domain", "show", NAME, code=1).exit_code == 1
    assert run(home, "domain", "delete", NAME, "--yes", code=1).exit_code == 1
    # without --yes the command asks, and a "no" keeps the domain
    result = CliRunner().invoke(cli.app, ["domain", "delete", "second.vpbx.test", "--home", str(home)], input="n\n")
    assert result.exit_code != 0
    assert "second.vpbx.test" in run(home, "domain", "list").output


def test_role_create(home: Path, server_on: ServerThread) -> None:
    run(home, "domain", "create", NAME, "--api-key", KEY)
    role = run(home, "role", "create", "--domain", NAME, "Бухгалтерия", "--rights", "users.get,groups.get").output
    role = role.strip()
    assert role.startswith("custom_")
    assert run(home, "role", "create", "--domain", NAME, "X", "--rights", "users.fly", code=1).exit_code == 1
    assert run(home, "role", "create", "--domain", NAME, "  ", "--rights", "users.get", code=1).exit_code == 1
    run(home, "key", "create", "--domain", NAME, "--role", role, "--api-key", "role-key-0123456789abc")
    server_on.start()
    roles = api(server_on, KEY, "/crmapi/v1/access-rights/custom-roles").json()
    assert roles == [{"id": role, "name": "Бухгалтерия", "rights": ["groups.get", "users.get"]}]
    assert api(server_on, "role-key-0123456789abc", "/crmapi/v1/groups").status_code == 200
    assert api(server_on, "role-key-0123456789abc", "/crmapi/v1/domain").status_code == 403


def test_db_upgrade(home: Path) -> None:
    assert "store is up to date" in run(home, "db", "upgrade").output
    assert (home / "vpbx.db").exists()
    assert "store is up to date" in run(home, "db", "upgrade").output  # twice: nothing to do
    assert "name" in run(home, "domain", "list").output  # an empty table


def test_serve(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPBX_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="300")
    vpbx = Path(sys.executable).with_name("vpbx")
    command = [str(vpbx)] if vpbx.exists() else [sys.executable, "-m", "vpbx.cli"]
    proc = subprocess.Popen([*command, "serve", "--home", str(tmp_path / "home"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    healthy = True
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert healthy, "".join(lines)
        key = None
        while time.monotonic() < deadline and key is None:
            match = re.search(r"API key \(X-API-KEY\):\s*(\S+)", "".join(lines))
            key = match.group(1) if match else None
            time.sleep(0.1)
        assert key, "".join(lines)
        r = httpx.get(f"http://127.0.0.1:{port}/crmapi/v1/users", headers={"X-API-KEY": key}, timeout=10)
        assert r.status_code == 200
        assert [u["login"] for u in r.json()["items"]] == ["admin", "user1", "director", "manager", "ivan", "maria",
                                                            "sergey", "anna", "elena", "dmitry"]
        assert (tmp_path / "home" / "demo-credentials.json").exists()
        assert "demo.vpbx.local" in "".join(lines)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait(5)
