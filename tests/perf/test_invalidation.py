"""Cached reads are never stale: what another process commits is seen by the server's very next request.

The server caches keys, response bodies and the engine's routes (``store.changes``); these tests write from a
separate process (the CLI, or ``writer.py``: an operator's script on the same store), then read at once, with no
cache clearing and no waiting. Every read is made twice before the write, so it is served from the cache.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from vpbx.api.errors import FORBIDDEN, NOT_FOUND
from vpbx.engine import engine_of
from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant

V1 = "/crmapi/v1"
WRITER = Path(__file__).with_name("writer.py")
LEGACY = "/sys/crm_api.wcgp"


def store_args(server: ServerThread) -> list[str]:
    return ["--db", server.settings.db_url, "--home", str(server.settings.home)]


def cli(server: ServerThread, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "vpbx.cli", *args, *store_args(server)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def write_elsewhere(server: ServerThread, tenant: Tenant, op: str, arg: str) -> None:
    done = subprocess.run([sys.executable, str(WRITER), server.settings.db_url, str(server.settings.home),
                           tenant.name, op, arg], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(autouse=True)
def listening(server: ServerThread) -> None:
    """On PostgreSQL the server caches only while it listens for changes: wait for that, so the reads below are
    served from the cache (``cached_get`` checks) and the tests show invalidation, not the absence of a cache."""
    server.call(server.runtime.reader.changes.ready())


def cached_get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    """The read, made twice: the second answer comes from the cache the first one filled."""
    first = client.get(path, params=params)
    second = client.get(path, params=params)
    assert first.status_code == second.status_code and first.content == second.content
    return second


def assert_cached(server: ServerThread) -> None:
    assert server.runtime.reader.kept() > 0


def test_a_key_revoked_by_the_cli_is_refused_at_the_next_request(server: ServerThread, tenant: Tenant) -> None:
    key = cli(server, "key", "create", "--domain", tenant.name).strip()
    with httpx.Client(base_url=server.url, headers={"X-API-KEY": key}, timeout=30) as client:
        assert cached_get(client, f"{V1}/users").status_code == 200
        assert cached_get(client, f"{V1}/telnums").status_code == 200
        cli(server, "key", "revoke", key[:6], "--domain", tenant.name)
        for path in ("/users", "/telnums", "/groups", "/domain"):  # fast path and FastAPI endpoints alike
            r = client.get(V1 + path)
            assert (r.status_code, r.json()) == (401, {"message": "Invalid token"}), path
    assert tenant.client.get(f"{V1}/users").status_code == 200  # the domain's other key still works


def test_a_number_added_by_the_cli_is_listed_at_the_next_request(server: ServerThread, tenant: Tenant) -> None:
    before = cached_get(tenant.client, f"{V1}/telnums").json()
    assert_cached(server)
    number = f"7495{uuid.uuid4().int % 10**7:07d}"
    cli(server, "telnum", "add", number, "--domain", tenant.name)
    after = tenant.client.get(f"{V1}/telnums").json()
    assert after["info"]["total"] == before["info"]["total"] + 1
    assert number in {item["telnum"] for item in after["items"]}


def test_an_employee_another_process_creates_is_read_at_the_next_request(server: ServerThread,
                                                                          tenant: Tenant) -> None:
    login = f"w{uuid.uuid4().hex[:8]}"
    listing = cached_get(tenant.client, f"{V1}/users", limit=1000).json()
    cached_get(tenant.client, f"{V1}/users", search=login)
    accounts = cached_get(tenant.client, LEGACY, cmd="accounts", token=tenant.legacy_token).json()
    assert_cached(server)
    write_elsewhere(server, tenant, "user", login)
    assert tenant.client.get(f"{V1}/users", params={"limit": 1000}).json()["info"]["total"] == \
        listing["info"]["total"] + 1
    found = tenant.client.get(f"{V1}/users", params={"search": login}).json()
    assert [u["login"] for u in found["items"]] == [login]
    assert tenant.client.get(f"{V1}/users/{login}").json()["login"] == login
    legacy = tenant.client.get(LEGACY, params={"cmd": "accounts", "token": tenant.legacy_token}).json()
    assert len(legacy) == len(accounts) + 1 and login in {a["name"] for a in legacy}


def test_a_department_and_a_blacklisted_number_are_read_at_the_next_request(server: ServerThread,
                                                                             tenant: Tenant) -> None:
    groups = cached_get(tenant.client, f"{V1}/groups").json()
    legacy_groups = cached_get(tenant.client, LEGACY, cmd="groups", token=tenant.legacy_token).json()
    listed = cached_get(tenant.client, f"{V1}/blacklist/telnums").json()
    name = f"Отдел {uuid.uuid4().hex[:6]}"
    write_elsewhere(server, tenant, "group", name)
    write_elsewhere(server, tenant, "blacklist", "79990001122")
    assert tenant.client.get(f"{V1}/groups").json()["info"]["total"] == groups["info"]["total"] + 1
    assert len(tenant.client.get(LEGACY, params={"cmd": "groups", "token": tenant.legacy_token}).json()) == \
        len(legacy_groups) + 1
    now_listed = tenant.client.get(f"{V1}/blacklist/telnums").json()
    assert sorted(e["telnum"] for e in now_listed) == sorted([e["telnum"] for e in listed] + ["79990001122"])


def test_a_route_another_process_changes_is_read_and_rung_at_once(server: ServerThread, tenant: Tenant) -> None:
    number = f"{V1}/telnums/74951234567"
    write_elsewhere(server, tenant, "route", "ivan")
    assert cached_get(tenant.client, number).json()["user"] == "ivan"

    async def engine_route() -> Any:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
        route = await engine_of(server.runtime).config.route(domain, "74951234567", server.runtime.clock.now())
        assert route is not None
        return route.target.user

    assert server.call(engine_route()) == "ivan"
    assert server.call(engine_route()) == "ivan"  # cached by the engine now
    write_elsewhere(server, tenant, "route", "anna")
    assert tenant.client.get(number).json()["user"] == "anna"
    assert server.call(engine_route()) == "anna"


def test_the_fast_path_answers_as_fastapi_does(server: ServerThread, tenant: Tenant) -> None:
    """The same bytes and headers whether the fast path or FastAPI's endpoint answers (an unknown query
    parameter sends the request to FastAPI, which ignores it)."""
    for path in ("/users", "/users/ivan", "/groups", "/telnums", "/telnums/74951234567", "/caller-ids",
                 "/caller-ids/telnums", "/caller-ids/regions", "/blacklist/telnums", "/blacklist/block-anonymous",
                 "/sip-registrations"):
        fast = tenant.client.get(V1 + path)
        slow = tenant.client.get(V1 + path, params={"unknown": "1"})
        assert fast.status_code == slow.status_code == 200, path
        assert fast.content == slow.content, path
        drop = {"date"}
        assert {k: v for k, v in fast.headers.items() if k not in drop} == \
            {k: v for k, v in slow.headers.items() if k not in drop}, path
    for cmd in ("accounts", "groups"):
        params = {"cmd": cmd, "token": tenant.legacy_token}
        fast, slow = tenant.client.get(LEGACY, params=params), tenant.client.get(LEGACY, params={**params, "x": "1"})
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content) and fast.status_code == 200, cmd
        assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    wrong = {"cmd": "accounts", "token": "nope"}
    fast, slow = tenant.client.get(LEGACY, params=wrong), tenant.client.get(LEGACY, params={**wrong, "x": "1"})
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content) == (401, b'{"error":"Invalid token"}')
    r = tenant.client.get(f"{V1}/users", params={"limit": "-1"})  # refused by FastAPI's validation, as before
    assert r.status_code == 400
    r = tenant.client.get(f"{V1}/users/nobody-{uuid.uuid4().hex[:6]}")
    assert (r.status_code, r.json()) == (404, {"message": NOT_FOUND})


@pytest.mark.parametrize("path", ["/groups", "/telnums", "/caller-ids", "/sip-registrations"])
def test_a_key_without_the_right_is_refused_by_the_fast_path(server: ServerThread, tenant: Tenant,
                                                             path: str) -> None:
    async def work() -> str:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role="restricted_user")
            await session.commit()
            return key

    key = server.call(work())
    with httpx.Client(base_url=server.url, headers={"X-API-KEY": key}, timeout=30) as client:
        assert client.get(f"{V1}/users").status_code == 200
        r = client.get(V1 + path)
        assert (r.status_code, r.json()) == (403, {"message": FORBIDDEN})


def test_employee_writes_keep_the_keys_cached_while_a_revocation_ends_them(server: ServerThread,
                                                                          tenant: Tenant) -> None:
    """Changes say what they changed (``store.changes`` areas): an employee written here or by another process
    empties the read bodies but not the cached keys (no key reload per write), while a key revoked by the CLI is
    refused by the very next request."""
    key = cli(server, "key", "create", "--domain", tenant.name).strip()
    auth = server.runtime.auth
    with httpx.Client(base_url=server.url, headers={"X-API-KEY": key}, timeout=30) as client:
        listing = cached_get(client, f"{V1}/users", limit=1000).json()
        loads = auth.loads
        login = f"w{uuid.uuid4().hex[:8]}"
        write_elsewhere(server, tenant, "user", login)  # another process
        r = client.post(f"{V1}/users", json={"name": "Сотрудник здесь"})  # this process, through the API
        assert r.status_code in (200, 201), r.text
        after = client.get(f"{V1}/users", params={"limit": 1000}).json()
        assert after["info"]["total"] == listing["info"]["total"] + 2
        assert login in {u["login"] for u in after["items"]}
        assert client.get(f"{V1}/users/{login}").status_code == 200
        assert auth.loads == loads  # the writes reloaded no key and no domain list
        cli(server, "key", "revoke", key[:6], "--domain", tenant.name)
        for path in ("/users", f"/users/{login}", "/groups"):
            r = client.get(V1 + path)
            assert (r.status_code, r.json()) == (401, {"message": "Invalid token"}), path
    assert auth.loads > loads
    assert tenant.client.get(f"{V1}/users").status_code == 200  # the domain's other key still works
