"""``accounts`` and ``groups`` POSTed as form fields (how the legacy API's clients send them) are answered by the
fast layer (``api.fastpath``) with the bytes FastAPI's endpoint gives; any other form of the request reaches the
endpoint with its body intact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.legacy.client import PATH

import vpbx.api.legacy
from vpbx.testing.server import ServerThread, Tenant

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NO_KEY = {"X-API-KEY": ""}


def _post(t: Tenant, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None) -> httpx.Response:
    return t.client.post(PATH, content=body, headers={**NO_KEY, **(FORM if headers is None else headers)})


@pytest.fixture
def endpoint_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI's legacy endpoint fails if reached: what still answers came from the fast layer."""

    async def refuse(*_args: Any) -> None:
        raise AssertionError("reached FastAPI's endpoint")

    monkeypatch.setattr(vpbx.api.legacy, "serve", refuse)


@pytest.mark.parametrize("cmd", ["accounts", "groups"])
def test_a_form_post_is_answered_by_the_fast_layer(lserver: ServerThread, ltenant: Tenant, cmd: str,
                                                   endpoint_off: None) -> None:
    got = ltenant.client.get(PATH, params={"cmd": cmd, "token": ltenant.legacy_token}, headers=NO_KEY)
    assert got.status_code == 200, got.text
    posted = _post(ltenant, f"cmd={cmd}&token={ltenant.legacy_token}".encode())
    assert (posted.status_code, posted.content) == (200, got.content)
    assert posted.headers["content-type"] == "application/json"
    # in chunks (no Content-Length), the token in the query and the command in the form, no Content-Type at all
    chunked = _post(ltenant, iter([b"cmd=", cmd.encode(), b"&token=", ltenant.legacy_token.encode()]))
    assert (chunked.status_code, chunked.content) == (200, got.content)
    split = ltenant.client.post(f"{PATH}?token={ltenant.legacy_token}", content=f"cmd={cmd}".encode(),
                                headers=NO_KEY)
    assert (split.status_code, split.content) == (200, got.content)
    bad = _post(ltenant, f"cmd={cmd}&token=not-{ltenant.legacy_token}".encode())
    assert (bad.status_code, bad.json()) == (401, {"error": "Invalid token"})


@pytest.mark.parametrize("cmd", ["accounts", "groups"])
def test_other_forms_reach_the_endpoint_with_their_body(lserver: ServerThread, ltenant: Tenant, cmd: str) -> None:
    fast = _post(ltenant, f"cmd={cmd}&token={ltenant.legacy_token}".encode())
    assert fast.status_code == 200, fast.text
    multipart = ltenant.client.post(PATH, files={"cmd": (None, cmd), "token": (None, ltenant.legacy_token)},
                                    headers=NO_KEY)
    as_json = ltenant.client.post(PATH, json={"cmd": cmd, "token": ltenant.legacy_token}, headers=NO_KEY)
    extra = _post(ltenant, f"cmd={cmd}&token={ltenant.legacy_token}&limit=5".encode())  # a name it does not take
    for r in (multipart, as_json, extra):
        assert (r.status_code, r.content) == (200, fast.content), r.text
    # the form field overrides the query's, on both paths
    over = ltenant.client.post(f"{PATH}?cmd=history&token={ltenant.legacy_token}", content=f"cmd={cmd}".encode(),
                               headers={**NO_KEY, **FORM})
    assert (over.status_code, over.content) == (200, fast.content)
    broken = _post(ltenant, b"cmd=" + cmd.encode() + b"&token=" + ltenant.legacy_token.encode() + b"&user=\xff")
    assert (broken.status_code, broken.json()) == (400, {"error": "Invalid parameters"})


def test_a_write_command_after_the_fast_layer_read_its_body(lserver: ServerThread, ltenant: Tenant) -> None:
    """set_dnd is not the fast layer's: the body it read is handed on whole, also when it came in chunks."""
    for state, want in (("true", True), ("false", False)):
        r = _post(ltenant, iter([b"cmd=set_dnd&user=ivan", b"&state=" + state.encode(),
                                 b"&token=" + ltenant.legacy_token.encode()]))
        assert (r.status_code, r.text) == (200, "OK")
        r = _post(ltenant, f"cmd=get_dnd&user=ivan&token={ltenant.legacy_token}".encode())
        assert (r.status_code, r.json()) == (200, {"state": want})
