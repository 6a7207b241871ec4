"""What the CLI tests against a running server share: a virtual-clock server per module, and running a command
against it with a tenant's key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from vpbx import cli
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant


@pytest.fixture(scope="module")
def vserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    srv = ServerThread(Settings(db=f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}", home=tmp, demo=False, port=0,
                                clock="virtual")).start()
    yield srv
    srv.stop()


def run(srv: ServerThread, tenant: Tenant, *args: str) -> tuple[int, str]:
    """The command against ``srv`` with the tenant's key; the operator's key moves the shared virtual clock (the
    CLI reads it from VPBX_OPERATOR_KEY)."""
    result = CliRunner().invoke(cli.app, [*args, "--url", srv.url, "--key", tenant.api_key],
                                env={"VPBX_OPERATOR_KEY": srv.operator_key})
    return result.exit_code, result.output
