"""Cabinet fixtures: the tenant's admin with a password, and Debian's chromium driven by Playwright (skipped with
the reason when chromium or playwright is missing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from tests.console.support import Crm, Person, set_password

from vpbx.testing.server import ServerThread, Tenant, create_tenant

CHROMIUM = os.environ.get("VPBX_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def admin(tenant: Tenant) -> Person:
    return set_password(tenant, "admin")


# Per test, not per session: Playwright's sync API runs an event loop in this thread while it is open, and the
# PostgreSQL server fixture (started between tests) needs the thread's loop free.
@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium at {CHROMIUM} (make system-deps installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()




@pytest.fixture
def crm() -> Iterator[Crm]:
    receiver = Crm()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def virtual_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server on the virtual clock (the sandbox's clock controls), one per store backend."""
    from tests.conftest import PG_URL

    from vpbx.settings import Settings
    from vpbx.testing.postgres import SKIP_REASON, empty_database

    tmp = tmp_path_factory.mktemp(f"virtual-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    elif not PG_URL:
        pytest.skip(SKIP_REASON)
    else:
        db = empty_database(PG_URL, suffix="_console_virtual")  # never the main server's database
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


@pytest.fixture
def virtual_tenant(virtual_server: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(virtual_server)
    yield t
    t.client.close()
