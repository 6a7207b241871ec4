"""Tenants share nothing (issue 19): the virtual clock every domain of a server shares moves only with the
server operator's key (``X-OPERATOR-KEY``), never with a domain's key."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from vpbx.cli import app
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, create_tenant


@pytest.fixture
def virtual(store_url: str, tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(Settings(db=store_url, home=tmp_path, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


def now(srv: ServerThread, key: str) -> str:
    r = httpx.get(srv.url + "/sim/v1/clock", headers={"X-API-KEY": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["now"])


def test_a_tenant_key_cannot_move_the_shared_clock(virtual: ServerThread) -> None:
    a = create_tenant(virtual, demo_data=False)
    b = create_tenant(virtual, demo_data=False)
    before = now(virtual, b.api_key)
    for key in (a.api_key, b.api_key):
        r = httpx.post(virtual.url + "/sim/v1/clock/advance", json={"seconds": 3600}, headers={"X-API-KEY": key},
                       timeout=30)
        assert r.status_code == 403
        assert "X-OPERATOR-KEY" in r.json()["message"]
    assert now(virtual, b.api_key) == now(virtual, a.api_key) == before  # nobody's clock moved
    assert httpx.post(virtual.url + "/sim/v1/clock/advance", json={"seconds": 1}, timeout=30).status_code == 401
    r = httpx.post(virtual.url + "/sim/v1/clock/advance", json={"seconds": 1},
                   headers={"X-API-KEY": a.api_key, "X-OPERATOR-KEY": "op_wrong"}, timeout=30)
    assert r.status_code == 401
    a.client.close()
    b.client.close()


def test_the_operator_key_moves_it(virtual: ServerThread) -> None:
    t = create_tenant(virtual, demo_data=False)
    before = now(virtual, t.api_key)
    r = httpx.post(virtual.url + "/sim/v1/clock/advance", json={"seconds": 3600},
                   headers={"X-OPERATOR-KEY": virtual.operator_key}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["now"] > before
    assert now(virtual, t.api_key) == r.json()["now"]  # one clock: every tenant sees it moved
    t.client.close()


def test_the_operator_key_is_kept_owner_only(virtual: ServerThread, tmp_path: Path) -> None:
    key = virtual.operator_key
    path = tmp_path / "operator-key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_create_operator_replaces_it(store_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["key", "create", "--operator", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("op_")
    assert stat.S_IMODE((tmp_path / "h" / "operator-key").stat().st_mode) == 0o600
    srv = ServerThread(Settings(db=store_url, home=tmp_path / "h", demo=False, port=0, clock="virtual")).start()
    try:
        r = httpx.post(srv.url + "/sim/v1/clock/advance", json={"seconds": 5}, headers={"X-OPERATOR-KEY": key},
                       timeout=30)
        assert r.status_code == 200, r.text
    finally:
        srv.stop()
    assert CliRunner().invoke(app, ["key", "create", "--home", str(tmp_path / "h")]).exit_code != 0  # no domain


def test_settings_name_the_operator_key(store_url: str, tmp_path: Path) -> None:
    srv = ServerThread(Settings(db=store_url, home=tmp_path, demo=False, port=0, clock="virtual",
                                operator_key="op_from-settings")).start()
    try:
        ok = httpx.post(srv.url + "/sim/v1/clock/advance", json={"seconds": 1},
                        headers={"X-OPERATOR-KEY": "op_from-settings"}, timeout=30)
        assert ok.status_code == 200
        assert not (tmp_path / "operator-key").exists()
    finally:
        srv.stop()
