"""The one auth helper: ``X-API-KEY`` to a domain principal, with rights, cached in memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import select

from vpbx.api.errors import CRM_DISABLED, CRM_SWITCHED_OFF, FORBIDDEN, INVALID_TOKEN, ApiError
from vpbx.domain.rights import BUILTIN_ROLE_RIGHTS
from vpbx.runtime import Runtime
from vpbx.security import key_hash, same
from vpbx.store.tables import ApiKey, CustomRole, Domain, Integration

# Another process (the CLI) may revoke a key: cached answers live this long.
CACHE_TTL = 2.0

api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False, description="The domain's API key")


@dataclass(frozen=True)
class Principal:
    domain_id: int
    domain_name: str
    timezone: str
    key_id: int
    rights: frozenset[str] | None  # None: every right

    def can(self, right: str) -> bool:
        return self.rights is None or right in self.rights


class AuthCache:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, Principal | str]] = {}
        self._domains: tuple[float, frozenset[str]] = (0.0, frozenset())

    def clear(self) -> None:
        self._keys.clear()
        self._domains = (0.0, frozenset())

    async def principal(self, runtime: Runtime, key: str) -> Principal:
        """The key's principal, or ApiError 401 with the documented message."""
        digest = key_hash(key)
        now = time.monotonic()
        hit = self._keys.get(digest)
        if hit is None or hit[0] < now:
            hit = (now + CACHE_TTL, await _load(runtime, digest))
            if len(self._keys) > 100_000:
                self._keys.clear()
            self._keys[digest] = hit
        result = hit[1]
        if isinstance(result, str):
            raise ApiError(401, result)
        return result

    async def domain_names(self, runtime: Runtime) -> frozenset[str]:
        now = time.monotonic()
        if self._domains[0] < now:
            async with runtime.sessions() as s:
                names = frozenset((await s.scalars(select(Domain.name))).all())
            self._domains = (now + CACHE_TTL, names)
        return self._domains[1]


async def _load(runtime: Runtime, digest: str) -> Principal | str:
    async with runtime.sessions() as s:
        row = (
            await s.execute(
                select(ApiKey, Domain, Integration)
                .join(Domain, Domain.id == ApiKey.domain_id)
                .join(Integration, Integration.domain_id == Domain.id)
                .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            )
        ).first()
        if row is None:
            return INVALID_TOKEN
        key, domain, integration = row
        if not same(key.key_hash, digest):
            return INVALID_TOKEN
        if not integration.enabled:
            return CRM_DISABLED
        if integration.switched_off:
            return CRM_SWITCHED_OFF
        rights: frozenset[str] | None = None
        if key.role is not None:
            if key.role in BUILTIN_ROLE_RIGHTS:
                rights = BUILTIN_ROLE_RIGHTS[key.role] if key.role != "admin" else None
            else:
                custom = await s.scalar(
                    select(CustomRole).where(CustomRole.domain_id == domain.id, CustomRole.role_id == key.role)
                )
                rights = frozenset(custom.rights) if custom else frozenset()
        return Principal(domain.id, domain.name, domain.timezone, key.id, rights)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _host_domain(host: str) -> str:
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0].lower()


async def principal_for(runtime: Runtime, key: str | None) -> Principal:
    if not key:
        raise ApiError(401, INVALID_TOKEN)
    return await runtime.auth.principal(runtime, key)


async def check_host(runtime: Runtime, principal: Principal, host_header: str) -> None:
    """A Host naming another tenant of this server must not reach this key's data."""
    host = _host_domain(host_header)
    if host != principal.domain_name and host in await runtime.auth.domain_names(runtime):
        raise ApiError(401, INVALID_TOKEN)


async def authenticate(
    request: Request,
    key: str | None = Depends(api_key_header),
    runtime: Runtime = Depends(get_runtime),
) -> Principal:
    principal = await principal_for(runtime, key)
    await check_host(runtime, principal, request.headers.get("host", ""))
    request.state.principal = principal
    return principal


def require(right: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: an authenticated principal holding ``right`` (else 403)."""

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if not principal.can(right):
            raise ApiError(403, FORBIDDEN)
        return principal

    dependency.__name__ = f"require_{right.replace('.', '_')}"
    return dependency
