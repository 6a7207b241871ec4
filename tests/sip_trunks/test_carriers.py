"""Carrier peers (issue 16): ``vpbx carrier add/list/remove`` and the repository the SIP core asks, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from vpbx import cli
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.store.repositories import carriers
from vpbx.testing.postgres import SKIP_REASON, empty_database


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=300, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=300, stderr=True))
    monkeypatch.delenv("VPBX_DB", raising=False)
    monkeypatch.delenv("VPBX_HOME", raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """(--db, --home) of an empty store on each backend."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vpbx.db'}", home
    pg = os.environ.get("VPBX_TEST_PG_URL", "")
    if not pg:
        pytest.skip(SKIP_REASON)
    return empty_database(pg, "_carriers"), home


def run(store: tuple[str, Path], *args: str, code: int = 0) -> Result:
    url, home = store
    result = CliRunner().invoke(cli.app, [*args, "--db", url, "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def lookup(store: tuple[str, Path], host: str, port: int) -> carriers.Carrier | None:
    async def main() -> carriers.Carrier | None:
        engine = db.create_engine(store[0])
        try:
            async with db.session_factory(engine, Settings(db=store[0], home=store[1]))() as session:
                return await carriers.find_by_source(session, host, port)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_add_list_remove(store: tuple[str, Path]) -> None:
    assert "no carriers" in run(store, "carrier", "list").output

    out = run(store, "carrier", "add", "upstream", "203.0.113.7").output
    assert "carrier upstream added: 203.0.113.7:5060" in out
    out = run(store, "carrier", "add", "backup", "localhost:5080").output  # a name is resolved when added
    assert "carrier backup added: 127.0.0.1:5080 (localhost)" in out
    run(store, "carrier", "add", "v6", "[2001:DB8::1]:5070")

    listing = run(store, "carrier", "list").output
    for row in (("upstream", "203.0.113.7", "5060"), ("backup", "127.0.0.1", "5080", "localhost"),
                ("v6", "2001:db8::1", "5070")):
        assert any(all(cell in line for cell in row) for line in listing.splitlines()), listing

    # the SIP core's question: who sends from this address and port?
    assert lookup(store, "203.0.113.7", 5060) == carriers.Carrier("upstream", "203.0.113.7", 5060)
    assert lookup(store, "::ffff:127.0.0.1", 5080) == carriers.Carrier("backup", "127.0.0.1", 5080)
    assert lookup(store, "2001:db8:0::1", 5070) == carriers.Carrier("v6", "2001:db8::1", 5070)
    assert lookup(store, "203.0.113.7", 5061) is None  # trusted by address AND port
    assert lookup(store, "203.0.113.8", 5060) is None
    assert lookup(store, "not-an-ip", 5060) is None

    assert "removed" in run(store, "carrier", "remove", "upstream").output
    assert lookup(store, "203.0.113.7", 5060) is None
    assert "no carrier named upstream" in run(store, "carrier", "remove", "upstream", code=1).output
    assert "upstream" not in run(store, "carrier", "list").output


def test_clean_errors(store: tuple[str, Path]) -> None:
    run(store, "carrier", "add", "upstream", "203.0.113.7:5060")
    assert "a carrier named upstream already exists" in run(store, "carrier", "add", "upstream", "198.51.100.1",
                                                           code=1).output
    assert "carrier upstream is already at 203.0.113.7:5060" in run(store, "carrier", "add", "other",
                                                                   "203.0.113.7", code=1).output
    for bad in ("203.0.113.9:0", "203.0.113.9:70000", "bad host!", "a..b", "[zz::1]:5060"):
        assert run(store, "carrier", "add", "x", bad, code=2).exit_code == 2
    assert "does not resolve" in run(store, "carrier", "add", "x", "no-such-host.invalid", code=2).output
    assert len(run(store, "carrier", "list").output.strip().splitlines()) == 5  # the one carrier's table


def test_repository_interface(store: tuple[str, Path]) -> None:
    async def main() -> None:
        engine = db.create_engine(store[0])
        settings = Settings(db=store[0], home=store[1])
        try:
            await db.upgrade(engine)
            async with db.session_factory(engine, settings)() as session:
                added = await carriers.add_carrier(session, "a", "192.0.2.1", 5060)
                assert added == carriers.Carrier("a", "192.0.2.1", 5060)
                with pytest.raises(carriers.CarrierExists, match="already exists"):
                    await carriers.add_carrier(session, "a", "192.0.2.2", 5060)
                await carriers.add_carrier(session, "b", "192.0.2.2", 5060)  # the session is still usable
                await session.commit()
                assert [c.name for c in await carriers.list_carriers(session)] == ["a", "b"]
                assert await carriers.remove_carrier(session, "a") is True
                assert await carriers.remove_carrier(session, "a") is False
                await session.commit()
                assert await carriers.list_carriers(session) == [carriers.Carrier("b", "192.0.2.2", 5060)]
        finally:
            await engine.dispose()

    asyncio.run(main())
