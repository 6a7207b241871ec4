"""``SafeResolver``: the system's resolver, refusing names with an internal address (``vpbx.notify.ssrf``)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol

from vpbx.notify.ssrf import ALLOW_HINT, AddressRefused, is_internal


class Lookup(Protocol):
    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[dict[str, Any]]: ...


class SystemResolver:
    """``getaddrinfo`` in the loop's executor: every address of a name, IPv4 and IPv6, duplicates dropped."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        seen: dict[str, dict[str, Any]] = {}
        for fam, _, proto, _, address in infos:
            seen.setdefault(str(address[0]), {"hostname": host, "host": str(address[0]), "port": port,
                                              "family": fam, "proto": proto, "flags": 0})
        return list(seen.values())


class SafeResolver:
    """Resolves names and refuses any that has an internal address, unless they are allowed."""

    def __init__(self, private_ok: bool) -> None:
        self.private_ok = private_ok
        self._inner: Lookup = SystemResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        try:
            results = await self._inner.resolve(host, port, family)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        if self.private_ok:
            return results
        internal = [r["host"] for r in results if is_internal(r["host"])]
        if internal or not results:
            raise AddressRefused(f"{host} resolves to the private address {internal[0] if internal else '?'} "
                                 f"({ALLOW_HINT})")
        return results

    async def close(self) -> None:
        return None
