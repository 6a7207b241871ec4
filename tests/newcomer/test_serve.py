"""``vpbx serve``: every option reads its ``VPBX_`` variable, ``--workers`` is gone until several processes
share the runtime, bad values exit 2, and the banner never shows a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from vpbx import cli
from vpbx.settings import Settings


class Captured:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.run: dict[str, Any] = {}
        self.logs: tuple[str, bool] | None = None


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Captured:
    """``vpbx serve`` up to uvicorn: the settings it builds, uvicorn's arguments, the log configuration."""
    import uvicorn

    import vpbx.app
    from vpbx import gctune, logs

    got = Captured()

    def create_app(settings: Settings, **_: Any) -> str:
        got.settings = settings
        return "app"

    monkeypatch.setattr(vpbx.app, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: got.run.update(kw, app=app))
    monkeypatch.setattr(logs, "configure", lambda level, json: setattr(got, "logs", (level, json)))
    monkeypatch.setattr(gctune, "tune", lambda: None)
    for name in list(__import__("os").environ):
        if name.startswith("VPBX_") and name != "VPBX_TEST_PG_URL":
            monkeypatch.delenv(name)
    return got


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["serve", *args], env=env)
    return result.exit_code, result.output


def test_every_serve_option_reads_its_vpbx_variable() -> None:
    command: Any = typer.main.get_command(cli.app)
    serve = command.commands["serve"]
    options = [p for p in serve.params if p.param_type_name == "option" and p.name != "help"]
    assert options
    for option in options:
        assert option.envvar == f"VPBX_{str(option.name).upper()}", option.name


def test_variables_reach_the_settings(serve: Captured, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    env = {"VPBX_HOST": "127.0.0.2", "VPBX_PORT": "8181", "VPBX_DB": f"sqlite+aiosqlite:///{tmp_path}/x.db",
           "VPBX_HOME": str(tmp_path), "VPBX_CLOCK": "virtual", "VPBX_DEMO": "false", "VPBX_DEMO_PHONES": "0",
           "VPBX_TLS_CERT": str(cert), "VPBX_TLS_KEY": str(key), "VPBX_LOG_JSON": "1", "VPBX_LOG_LEVEL": "warning",
           "VPBX_ALLOW_PRIVATE_CRM": "true"}
    code, out = invoke(env=env)
    assert code == 0, out
    s = serve.settings
    assert s is not None
    assert (s.host, s.port, s.db, s.home, s.clock, s.demo, s.demo_phones) == (
        "127.0.0.2", 8181, env["VPBX_DB"], tmp_path, "virtual", False, False)
    assert (s.tls_cert, s.tls_key, s.log_json, s.log_level, s.allow_private_crm) == (cert, key, True, "warning", True)
    assert serve.logs == ("warning", True)
    assert (serve.run["host"], serve.run["port"], serve.run["ssl_certfile"]) == ("127.0.0.2", 8181, cert)


def test_defaults_without_variables(serve: Captured) -> None:
    code, out = invoke()
    assert code == 0, out
    s = serve.settings
    assert s is not None
    assert (s.host, s.port, s.clock, s.demo, s.demo_phones, s.log_json, s.log_level) == (
        "127.0.0.1", 8080, "real", True, True, False, "info")
    assert serve.run["access_log"] is False and serve.run["log_config"] is None  # vpbx logs the requests


def test_an_option_beats_its_variable(serve: Captured) -> None:
    code, out = invoke("--clock", "real", "--log-level", "debug", env={"VPBX_CLOCK": "virtual",
                                                                      "VPBX_LOG_LEVEL": "error"})
    assert code == 0, out
    assert serve.settings is not None and serve.settings.clock == "real" and serve.logs == ("debug", False)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--clock", "fast"], {}, "real or virtual"),
    ([], {"VPBX_CLOCK": "fast"}, "real or virtual"),
    (["--log-level", "loud"], {}, "debug, info, warning, error, critical"),
    (["--workers", "4"], {}, "--workers needs a PostgreSQL store"),  # the embedded default: one process
    (["--tls-cert", "c.pem"], {}, "give both --tls-cert and --tls-key"),
])
def test_bad_values_exit_2_with_the_reason(serve: Captured, args: list[str], env: dict[str, str],
                                           message: str) -> None:
    code, out = invoke(*args, env=env)
    assert code == 2 and message in " ".join(out.split()), out
    assert serve.run == {}  # nothing was served


@pytest.mark.parametrize("url", [
    "postgresql+asyncpg://vpbx:s3cr3t-pw@db.example:5432/vpbx",
    "postgresql://vpbx:s3cr3t-pw@db.example/vpbx?sslmode=require&password=s3cr3t-pw",
])
def test_the_banner_masks_the_store_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    console = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", console)
    cli.announce(Settings(db=url, home=tmp_path, demo=False), "http://127.0.0.1:8080")
    text = console.export_text()
    assert "s3cr3t-pw" not in text
    assert "vpbx:***@db.example" in text and "/docs" in text and "http://127.0.0.1:8080/" in text


def test_redact_url() -> None:
    from vpbx.logs import redact_url

    assert redact_url("sqlite+aiosqlite:///.vpbx/vpbx.db") == "sqlite+aiosqlite:///.vpbx/vpbx.db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://u:p@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_url("https://crm.example/hook?token=abc&x=1") == "https://crm.example/hook?token=***&x=1"
