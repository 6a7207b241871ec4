"""CRM user ids mapped to employees (000/004 §5.5-5.6 ``self_map``): with the map on, every legacy
command taking ``user`` accepts a mapped CRM id as well as a login or an extension. Managed by
``vpbx integration map``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from tests.legacy.client import PATH, LegacyClient, LegacyError
from typer.testing import CliRunner, Result

from vpbx import cli
from vpbx.services import legacy, tenancy
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant

INVALID_PARAMETERS = {"error": "Invalid parameters"}


def map_user(server: ServerThread, t: Tenant, crm_user: str, login: str) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            await legacy.map_user(s, await tenancy.get_domain(s, t.name), crm_user, login)
            await s.commit()

    server.call(work())


def map_enabled(server: ServerThread, t: Tenant, on: bool) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            await legacy.set_map_enabled(s, await tenancy.get_domain(s, t.name), on)
            await s.commit()

    server.call(work())


def test_mapped_ids_only_while_the_map_is_on(lserver: ServerThread, ltenant: Tenant, crm: LegacyClient) -> None:
    map_user(lserver, ltenant, "crm-42", "ivan")
    with pytest.raises(LegacyError) as exc:  # the map is off: a CRM id names nobody
        crm.get_dnd("crm-42")
    assert (exc.value.status, exc.value.body) == (400, INVALID_PARAMETERS)
    map_enabled(lserver, ltenant, True)
    crm.set_dnd("crm-42", True)
    assert crm.get_dnd("crm-42") is True and crm.get_dnd("ivan") is True and crm.get_dnd("707") is True
    assert ltenant.client.get("/crmapi/v1/users/ivan/dnd").json() == {"state": True}
    assert crm.groups("crm-42") == [{"id": "sales", "realName": "Отдел продаж", "ext": "700"}]
    crm.subscribe_on_calls("crm-42", False, "sales")
    assert crm.subscription_status("crm-42", "sales") is False
    assert crm.subscription_status("ivan", "sales") is False
    assert ltenant.client.get("/crmapi/v1/users/ivan/subscription", params={"group_id": "sales"}).json() \
        == {"state": False}
    with pytest.raises(LegacyError):
        crm.get_dnd("crm-43")
    map_enabled(lserver, ltenant, False)
    with pytest.raises(LegacyError):
        crm.get_dnd("crm-42")
    assert crm.get_dnd("ivan") is True


def test_a_mapped_id_wins_over_a_login(lserver: ServerThread, ltenant: Tenant, crm: LegacyClient) -> None:
    """The CRM's ids are the CRM's: when one equals a login, the mapping decides."""
    map_enabled(lserver, ltenant, True)
    map_user(lserver, ltenant, "admin", "maria")
    crm.set_dnd("admin", True)
    assert ltenant.client.get("/crmapi/v1/users/maria/dnd").json() == {"state": True}
    assert ltenant.client.get("/crmapi/v1/users/admin/dnd").json() == {"state": False}
    map_user(lserver, ltenant, "admin", "admin")  # mapping an id again moves it
    crm.set_dnd("admin", True)
    assert ltenant.client.get("/crmapi/v1/users/admin/dnd").json() == {"state": True}


def test_deleting_the_employee_drops_the_mapping(lserver: ServerThread, ltenant: Tenant, crm: LegacyClient) -> None:
    map_enabled(lserver, ltenant, True)
    map_user(lserver, ltenant, "crm-7", "sergey")
    assert crm.get_dnd("crm-7") is False
    assert ltenant.client.delete("/crmapi/v1/users/sergey").status_code == 204
    with pytest.raises(LegacyError) as exc:
        crm.get_dnd("crm-7")
    assert exc.value.status == 400


# --- vpbx integration map ---------------------------------------------------------------------------

KEY = "legacy-map-key-0123456789abcdef"
TOKEN = "5f317b9f-e86c-41f7-a6fc-c76eb0da0000"
NAME = "legacy-map.vpbx.test"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli, "console", Console(width=300, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=300, stderr=True))
    monkeypatch.delenv("VPBX_DB", raising=False)
    monkeypatch.delenv("VPBX_HOME", raising=False)
    return tmp_path / "home"


def run(home: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli.app, [*args, "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def served(home: Path) -> Iterator[ServerThread]:
    run(home, "domain", "create", NAME, "--api-key", KEY, "--legacy-token", TOKEN)
    srv = ServerThread(Settings(home=home, demo=False, port=0)).start()
    yield srv
    srv.stop()


def test_cli_maps_crm_users(home: Path, served: ServerThread) -> None:
    r = httpx.post(f"{served.url}/crmapi/v1/users", json={"login": "ivanov", "name": "Иванов Иван", "ext": "7301"},
                   headers={"X-API-KEY": KEY})
    assert r.status_code == 200, r.text
    out = run(home, "integration", "map", "--domain", NAME, "crm-7", "ivanov").output
    assert "user map off" in out and "crm-7 -> ivanov" in out
    crm = LegacyClient(served.url, TOKEN)
    try:
        with pytest.raises(LegacyError):
            crm.get_dnd("crm-7")
        assert "user map on" in run(home, "integration", "map", "--domain", NAME, "--on").output
        crm.set_dnd("crm-7", True)
        assert crm.get_dnd("ivanov") is True
        run(home, "integration", "map", "--domain", NAME, "crm-8", "7301")  # by extension
        out = run(home, "integration", "map", "--domain", NAME).output
        assert "crm-7 -> ivanov" in out and "crm-8 -> ivanov" in out
        out = run(home, "integration", "map", "--domain", NAME, "--unmap", "crm-7").output
        assert "crm-7" not in out and "crm-8 -> ivanov" in out
        with pytest.raises(LegacyError):
            crm.get_dnd("crm-7")
        assert crm.get_dnd("crm-8") is True
        run(home, "integration", "map", "--domain", NAME, "crm-9", "nobody", code=1)
        run(home, "integration", "map", "--domain", NAME, "--unmap", "crm-404", code=1)
        run(home, "integration", "map", "--domain", NAME, "crm-9", code=2)
        assert "user map off" in run(home, "integration", "map", "--domain", NAME, "--off").output
        r = httpx.post(f"{served.url}{PATH}", data={"cmd": "get_dnd", "user": "crm-8", "token": TOKEN})
        assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)
    finally:
        crm.close()
