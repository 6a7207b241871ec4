"""The README's "Integrate your CRM" and "Test your CRM against vpbx" snippets run, so they never rot."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from vpbx.notify.payloads import ContactQuery, EventNotice, EventType, build_body
from vpbx.testing.server import ServerThread, Tenant

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("Integrate your CRM", "Test your CRM against vpbx")


def snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks: list[str] = []
    for title in SECTIONS:
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
        assert match, f"README has no section {title!r}"
        blocks += re.findall(r"^```python\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    return blocks


def test_there_are_four_snippets() -> None:
    assert len(snippets()) == 4


def test_receiver_snippet_answers_the_pbx() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(snippets()[0], "README:receiver", "exec"), namespace)

    async def main() -> None:
        transport = httpx.ASGITransport(app=namespace["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://crm") as http:
            body, ctype = build_body(ContactQuery(phone="79101234567", callid="c1"), crm_token="my-crm-token",
                                     dialect="form")
            r = await http.post("/vpbx/", content=body, headers={"Content-Type": ctype})
            assert r.json() == {"contact_name": "ООО Ромашка", "responsible": "ivan"}
            event = EventNotice(type=EventType.INCOMING, callid="c1", phone="79101234567", user="ivan", direction="in")
            body, ctype = build_body(event, crm_token="my-crm-token", dialect="json")
            assert (await http.post("/vpbx/", content=body, headers={"Content-Type": ctype})).status_code == 200
            body, ctype = build_body(event, crm_token="wrong", dialect="json")
            r = await http.post("/vpbx/", content=body, headers={"Content-Type": ctype})
            assert (r.status_code, r.json()) == (401, {"error": "Invalid token"})

    asyncio.run(main())
    assert namespace["cards"] == ["79101234567 calls ivan"]


def test_client_snippet_runs_against_the_server(server: ServerThread, tenant: Tenant,
                                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    monkeypatch.setenv("VPBX_URL", server.url)
    monkeypatch.setenv("VPBX_API_KEY", tenant.api_key)
    exec(compile(snippets()[1], "README:client", "exec"), {})
    out = capsys.readouterr().out
    assert "ivan 707 Иван Петров" in out and "404 Not found" in out


@pytest.mark.parametrize("index", [2, 3], ids=["test_my_crm", "test_my_receiver"])
def test_plugin_snippets_pass_as_a_crm_project_would_run_them(tmp_path: Path, index: int) -> None:
    """In a directory of their own, without this project's configuration (pytest-asyncio in strict mode)."""
    (tmp_path / "test_snippet.py").write_text(snippets()[index], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
