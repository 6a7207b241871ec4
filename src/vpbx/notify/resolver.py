"""``SafeResolver``: aiohttp's resolver, refusing names with an internal address (``vpbx.notify.ssrf``).

Its own module because it imports aiohttp, which loads at the first CRM request rather than at every start
(issue 14: start time and idle memory); ``vpbx.notify.ssrf.SafeResolver`` still names it.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from vpbx.notify.ssrf import ALLOW_HINT, AddressRefused, is_internal


class SafeResolver(AbstractResolver):
    """Resolves names and refuses any that has an internal address, unless they are allowed."""

    def __init__(self, private_ok: bool) -> None:
        self.private_ok = private_ok
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self.private_ok:
            return results
        internal = [r["host"] for r in results if is_internal(r["host"])]
        if internal or not results:
            raise AddressRefused(f"{host} resolves to the private address {internal[0] if internal else '?'} "
                                 f"({ALLOW_HINT})")
        return results

    async def close(self) -> None:
        await self._inner.close()
