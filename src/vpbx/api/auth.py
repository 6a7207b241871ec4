"""The one auth helper: ``X-API-KEY`` to a domain principal, with rights, cached in memory."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.api.errors import CRM_DISABLED, CRM_SWITCHED_OFF, FORBIDDEN, INVALID_TOKEN, ApiError
from vpbx.domain.rights import BUILTIN_ROLE_RIGHTS
from vpbx.runtime import Runtime
from vpbx.security import key_hash, same
from vpbx.store.changes import ACCESS
from vpbx.store.tables import ApiKey, CustomRole, Domain, Integration

api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False, description="The domain's API key")


@dataclass(frozen=True)
class Principal:
    domain_id: int
    domain_name: str
    timezone: str
    key_id: int
    rights: frozenset[str] | None  # None: every right
    role: str | None = None  # the key's role (None: full rights); the audit log names it
    switched_off: bool = False  # the CRM was switched off after failing: only the integration itself answers


    def can(self, right: str) -> bool:
        return self.rights is None or right in self.rights


class AuthCache:
    """Keys' principals and the tenants' names, kept until an ``access`` change (domains, API keys, roles,
    integrations: ``store.changes.AREAS_OF``) is committed by any process: a revoked key fails from the next
    request on, wherever it was revoked, while writes of employees, departments or numbers leave it whole."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}  # key digest -> Principal or 401 message; legacy token -> Caller
        self._domains: frozenset[str] | None = None
        self._version: int | None = None
        self.loads = 0  # keys, tokens and domain lists read from the store (tests: a cache miss each)

    def clear(self) -> None:
        self._keys.clear()
        self._domains = None

    def _fresh(self, runtime: Runtime, *, in_request: bool = False) -> int:
        changes = runtime.reader.changes
        version = changes.in_request(ACCESS) if in_request else changes.version(ACCESS)
        if version != self._version:
            self.clear()
            self._version = version
        return version

    async def principal(self, runtime: Runtime, key: str, *, allow_switched_off: bool = False) -> Principal:
        """The key's principal, or ApiError 401 with the documented message."""
        digest = key_hash(key)
        version = self._fresh(runtime)
        result = self._keys.get(digest)
        if result is None:
            self.loads += 1
            result = await _load(runtime, digest)
            if self._version == version == runtime.reader.changes.version(ACCESS):  # no change landed as it loaded
                if len(self._keys) > 100_000:
                    self._keys.clear()
                self._keys[digest] = result
        if isinstance(result, str):
            raise ApiError(401, result)
        if result.switched_off and not allow_switched_off:
            raise ApiError(401, CRM_SWITCHED_OFF)
        return result

    async def legacy_caller(self, runtime: Runtime, token: str | None) -> Any:
        """The legacy token's ``services.legacy.Caller``, or None (unknown token, integration off)."""
        from vpbx.services import legacy

        if not token:
            return None
        digest = "legacy:" + key_hash(token)
        version = self._fresh(runtime)
        if digest in self._keys:
            return self._keys[digest]
        self.loads += 1
        async with runtime.sessions() as s:
            found = await legacy.caller(s, token)
        if self._version == version == runtime.reader.changes.version(ACCESS):
            self._keys[digest] = found
        return found

    async def domain_names(self, runtime: Runtime) -> frozenset[str]:
        version = self._fresh(runtime, in_request=True)
        names = self._domains
        if names is None:
            self.loads += 1
            async with runtime.sessions() as s:
                names = frozenset((await s.scalars(select(Domain.name))).all())
            if self._version == version == runtime.reader.changes.version(ACCESS):
                self._domains = names
        return names


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
        rights = None if key.role is None else await role_rights(s, domain.id, key.role)
        return Principal(domain.id, domain.name, domain.timezone, key.id, rights, key.role,
                         switched_off=bool(integration.switched_off))


async def role_rights(s: AsyncSession, domain_id: int, role: str) -> frozenset[str] | None:
    """A role's rights (None: every right), for an API key with that role and for an employee's cabinet."""
    if role in BUILTIN_ROLE_RIGHTS:
        return BUILTIN_ROLE_RIGHTS[role] if role != "admin" else None
    custom = await s.scalar(select(CustomRole).where(CustomRole.domain_id == domain_id, CustomRole.role_id == role))
    return frozenset(custom.rights) if custom else frozenset()


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


def require_even_switched_off(right: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency for the integration's own settings: like ``require``, but also while the CRM is switched off
    after failing (002 §3.3 answers every other request 401 ``CRM switched off``), so the domain can switch it
    back on through the API."""

    async def dependency(request: Request, key: str | None = Depends(api_key_header),
                         runtime: Runtime = Depends(get_runtime)) -> Principal:
        if not key:
            raise ApiError(401, INVALID_TOKEN)
        principal = await runtime.auth.principal(runtime, key, allow_switched_off=True)
        await check_host(runtime, principal, request.headers.get("host", ""))
        request.state.principal = principal
        if not principal.can(right):
            raise ApiError(403, FORBIDDEN)
        return principal

    return dependency


operator_key_header = APIKeyHeader(name="X-OPERATOR-KEY", auto_error=False,
                                   description="The server operator's key: moves the shared virtual clock")
OPERATOR_ONLY = "Only the server operator's key (X-OPERATOR-KEY) moves the shared clock"
_OPERATOR = "vpbx.operator_key_hash"


def _operator_hash(runtime: Runtime) -> str:
    # Read once per runtime (settings or <home>/operator-key); `vpbx key create --operator` needs a restart.
    digest = runtime.extras.get(_OPERATOR)
    if not isinstance(digest, str):
        from vpbx.secrets_store import operator_key

        digest = runtime.extras[_OPERATOR] = key_hash(operator_key(runtime.settings))
    return digest


async def require_operator(
    request: Request,
    operator: str | None = Depends(operator_key_header),
    key: str | None = Depends(api_key_header),
    runtime: Runtime = Depends(get_runtime),
) -> None:
    """Dependency: the server operator, never a tenant. What every domain shares (the virtual clock) is the
    operator's: a domain's key, however privileged, gets 403; a wrong operator key 401."""
    if operator:
        if same(key_hash(operator), _operator_hash(runtime)):
            return
        raise ApiError(401, INVALID_TOKEN)
    await authenticate(request, key, runtime)  # 401 for a wrong key, as everywhere
    raise ApiError(403, OPERATOR_ONLY)


def require(right: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: an authenticated principal holding ``right`` (else 403)."""

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if not principal.can(right):
            raise ApiError(403, FORBIDDEN)
        return principal

    dependency.__name__ = f"require_{right.replace('.', '_')}"
    return dependency
