"""Where the notifier may send: http(s) only, and no private, loopback or link-local address unless allowed.

A literal IP host is checked before the request; a name is checked after resolution, at connect time
(``SafeResolver``), so a DNS answer cannot smuggle an internal address past the check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from vpbx.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "[::1]"})


class Refused(Exception):
    """The URL may not be called; a configuration error, never retried."""


def allow_private(settings: Settings) -> bool:
    """The operator's choice, else: allowed when the server listens on loopback only."""
    if settings.allow_private_crm is not None:
        return settings.allow_private_crm
    host = settings.host.strip()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_reserved
            or ip.is_multicast)


def check_url(url: str, private_ok: bool) -> str:
    """The URL's host, or Refused: not http(s), no host, or a literal internal address when not allowed."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise Refused(f"bad URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise Refused("the URL must be http(s)")
    host = parts.hostname
    if not host:
        raise Refused("the URL has no host")
    if not private_ok:
        try:
            internal = is_internal(host)
        except ValueError:
            internal = host.lower() == "localhost" or host.lower().endswith(".localhost")
        if internal:
            raise Refused(f"private address {host} refused (--allow-private-crm allows it)")
    return host


class AddressRefused(Refused, OSError):
    """Every address a name resolved to is internal (raised inside aiohttp's connector)."""


class SafeResolver(AbstractResolver):
    """Resolves names, dropping internal addresses unless they are allowed."""

    def __init__(self, private_ok: bool) -> None:
        self.private_ok = private_ok
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self.private_ok:
            return results
        safe = [r for r in results if not is_internal(r["host"])]
        if not safe:
            raise AddressRefused(f"private address refused for {host} (--allow-private-crm allows it)")
        return safe

    async def close(self) -> None:
        await self._inner.close()
