"""Start/stop hooks for ``vpbx.app``; the dispatcher loads only when the server starts."""

from __future__ import annotations

from vpbx.runtime import Runtime


async def start(runtime: Runtime) -> None:
    from vpbx.notify import service

    await service.start(runtime)


async def stop(runtime: Runtime) -> None:
    from vpbx.notify import service

    await service.stop(runtime)
