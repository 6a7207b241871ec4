"""Connections to other PBXs (002 §17): the other PBX's domain and API key, and a sync that reads
its employees and departments through its own REST v1 (``GET /crmapi/v1/users`` and ``/groups``).

The other PBX is reached at ``https://{domain}`` unless the connection names a base ``url`` (a vpbx
extension: another port, plain HTTP on a private network, this same server in tests); every request
carries ``Host: {domain}`` and the key in ``X-API-KEY``.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.notify import ssrf
from vpbx.schemas.branches import BranchCreate, BranchUpdate
from vpbx.secrets_store import SecretBox
from vpbx.services.errors import Forbidden, Invalid, NotFound
from vpbx.services.users import search_text
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import trunks as repo
from vpbx.store.tables import Domain
from vpbx.store.tables.trunks import Branch

if TYPE_CHECKING:  # httpx (and what it imports) loads at the first sync, not at every server's start (issue 14)
    import httpx

TIMEOUT = (10.0, 5.0)  # seconds: a request, and its connect
PAGE_SIZE = 500
MAX_ITEMS = 100_000
USER_AGENT = "vpbx-branch-sync"


def branch_out(b: Branch) -> dict[str, Any]:
    return {
        "name": b.name,
        "domain": b.remote_domain,
        "status": b.status,
        "users_count": b.users_count,
        "groups_count": b.groups_count,
        "exts_count": b.exts_count,
        "collisions_count": b.collisions_count,
        "url": b.url,
        "error": b.error,
    }


async def get(session: AsyncSession, domain_id: int, remote_domain: str) -> Branch:
    b = await repo.find_branch(session, domain_id, remote_domain.strip().lower().rstrip("."))
    if b is None:
        raise NotFound("branch")
    return b


def _reset(b: Branch) -> None:
    b.status, b.error = "waiting", None
    b.users_count = b.groups_count = b.exts_count = b.collisions_count = 0
    b.directory = {}
    b.synced_at = None


async def _check_domain(session: AsyncSession, domain: Domain, remote: str) -> None:
    if remote == domain.name:
        raise Invalid("domain", "that is this PBX's own domain")
    if await repo.find_branch(session, domain.id, remote) is not None:
        raise Invalid("domain", f"a connection to {remote} exists")


def usable_key(key: str) -> bool:
    """The key travels in the ``X-API-KEY`` header: printable ASCII only (HTTP cannot carry anything else)."""
    return key.isascii() and key.isprintable()


def _key(value: str) -> str:
    key = value.strip()
    if not usable_key(key):
        raise Invalid("key", "printable ASCII characters only (it is sent as an HTTP header)")
    return key


async def create(session: AsyncSession, domain: Domain, data: BranchCreate, box: SecretBox,
                 now: datetime) -> Branch:
    if not domain.service_branch:
        raise Forbidden()
    await _check_domain(session, domain, data.domain)
    b = Branch(domain_id=domain.id, remote_domain=data.domain, name=data.name, url=data.url or None,
               key_sealed=box.seal(_key(data.key.get_secret_value())), created_at=now,
               search_text=search_text(data.name, data.domain))
    _reset(b)
    session.add(b)
    await session.flush()
    return b


async def update(session: AsyncSession, domain: Domain, remote_domain: str, data: BranchUpdate,
                 box: SecretBox) -> Branch:
    b = await get(session, domain.id, remote_domain)
    changed = False
    if data.domain is not None and data.domain != b.remote_domain:
        await _check_domain(session, domain, data.domain)
        b.remote_domain, changed = data.domain, True
    if data.url is not None and (data.url or None) != b.url:
        b.url, changed = data.url or None, True
    if data.key is not None:
        key = _key(data.key.get_secret_value())
        from cryptography.fernet import InvalidToken  # loaded with the first box used, not at start (issue 14)

        try:
            same_key = box.open(b.key_sealed) == key
        except InvalidToken:
            same_key = False
        if not same_key:
            b.key_sealed, changed = box.seal(key), True
    if data.name is not None:
        b.name = data.name
    if changed:  # another PBX or another key: what we knew no longer holds
        _reset(b)
    b.search_text = search_text(b.name, b.remote_domain)
    await session.flush()
    return b


async def delete(session: AsyncSession, domain_id: int, remote_domain: str) -> None:
    await session.delete(await get(session, domain_id, remote_domain))
    await session.flush()


# --- sync ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncTarget:
    remote_domain: str
    base_url: str
    key: str = field(repr=False)


@dataclass
class SyncResult:
    status: str
    error: str | None = None
    users: list[dict[str, str]] = field(default_factory=list)
    groups: list[dict[str, str]] = field(default_factory=list)


def target(b: Branch, box: SecretBox) -> SyncTarget:
    from cryptography.fernet import InvalidToken

    try:
        key = box.open(b.key_sealed)
    except InvalidToken:
        key = ""  # sealed under another server secret: the sync reports it
    return SyncTarget(b.remote_domain, (b.url or f"https://{b.remote_domain}").rstrip("/"), key)


class _Failed(Exception):
    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


async def _check_address(base_url: str, private_ok: bool) -> None:
    try:
        host = ssrf.check_url(base_url, private_ok)
    except ssrf.Refused as exc:
        raise _Failed("error", str(exc)) from exc
    if private_ok:
        return
    try:
        ssrf.is_internal(host.strip("[]"))
        return  # a literal address, checked above
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _Failed("unreachable", f"cannot resolve {host}: {exc}") from exc
    if any(ssrf.is_internal(str(info[4][0])) for info in infos):
        raise _Failed("error", f"{host} resolves to a private address (--allow-private-crm allows it)")


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return resp.reason_phrase


async def _fetch_all(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    import httpx

    items: list[dict[str, Any]] = []
    start = 0
    while True:
        try:
            resp = await client.get(path, params={"start": start, "limit": PAGE_SIZE})
        except httpx.TimeoutException as exc:
            raise _Failed("unreachable", f"GET {path}: timed out") from exc
        except httpx.HTTPError as exc:
            raise _Failed("unreachable", f"GET {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 401:
            raise _Failed("invalid_key", f"the other PBX refused the key: HTTP 401 {_message(resp)}")
        if resp.status_code == 403:
            raise _Failed("forbidden", f"the key may not read {path} (HTTP 403): it needs users.get and groups.get")
        if resp.status_code != 200:
            raise _Failed("error", f"GET {path}: HTTP {resp.status_code} {_message(resp)}")
        try:
            body = resp.json()
            page = body["items"]
            nxt = body.get("info", {}).get("next")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _Failed("error", f"GET {path}: not a vpbx REST v1 list") from exc
        if not isinstance(page, list):
            raise _Failed("error", f"GET {path}: not a vpbx REST v1 list")
        items.extend(i for i in page if isinstance(i, dict))
        if not isinstance(nxt, int) or nxt <= start or not page or len(items) >= MAX_ITEMS:
            return items
        start = nxt


async def fetch_directory(t: SyncTarget, *, private_ok: bool, transport: httpx.AsyncBaseTransport | None = None,
                          http_timeout: httpx.Timeout | None = None) -> SyncResult:
    """The other PBX's employees and departments, or a failure status with its reason. Never raises."""
    import httpx

    if http_timeout is None:
        http_timeout = httpx.Timeout(TIMEOUT[0], connect=TIMEOUT[1])
    if not t.key:
        return SyncResult("invalid_key", "the stored key cannot be read (server secret changed): set it again")
    if not usable_key(t.key):  # stored before keys were checked: it cannot be sent
        return SyncResult("invalid_key", "the stored key is not printable ASCII: set it again")
    try:
        if transport is None:
            await _check_address(t.base_url, private_ok)
        headers = {"X-API-KEY": t.key, "Host": t.remote_domain, "Accept": "application/json",
                   "User-Agent": USER_AGENT}
        async with httpx.AsyncClient(base_url=t.base_url, headers=headers, timeout=http_timeout, transport=transport,
                                     follow_redirects=False) as client:
            users = await _fetch_all(client, "/crmapi/v1/users")
            groups = await _fetch_all(client, "/crmapi/v1/groups")
    except _Failed as exc:
        return SyncResult(exc.status, exc.error)
    return SyncResult(
        "success",
        users=[{"login": str(u.get("login", "")), "name": str(u.get("name", "")), "ext": str(u.get("ext") or "")}
               for u in users],
        groups=[{"id": str(g.get("id", "")), "name": str(g.get("name", "")), "ext": str(g.get("ext") or "")}
                for g in groups],
    )


async def apply(session: AsyncSession, domain_id: int, remote_domain: str, result: SyncResult,
                now: datetime) -> Branch:
    """Record a sync's result on the connection (counts only change on success)."""
    b = await get(session, domain_id, remote_domain)
    b.status, b.error = result.status, result.error
    if result.status == "success":
        exts = {e["ext"] for e in (*result.users, *result.groups) if e["ext"]}
        ours = await dir_repo.used_extensions(session, domain_id)
        b.users_count = len(result.users)
        b.groups_count = len(result.groups)
        b.exts_count = len(exts)
        b.collisions_count = len(exts & ours)
        b.directory = {"users": result.users, "groups": result.groups}
        b.synced_at = now
    await session.flush()
    return b
