"""The call engine: live calls as state machines on the one clock (``vpbx.engine.core``)."""

from __future__ import annotations

from vpbx.engine.core import CallEngine, CallError
from vpbx.runtime import Runtime

__all__ = ["CallEngine", "CallError", "engine_of", "start", "stop"]

KEY = "engine"


def engine_of(runtime: Runtime) -> CallEngine:
    engine = runtime.extras.get(KEY)
    if not isinstance(engine, CallEngine):
        engine = CallEngine(runtime)
        runtime.extras[KEY] = engine
    return engine


async def start(runtime: Runtime) -> None:
    engine_of(runtime)


async def stop(runtime: Runtime) -> None:
    engine = runtime.extras.pop(KEY, None)
    if isinstance(engine, CallEngine):
        for call in list(engine.live.values()):
            call.cancel_timers()
        await engine.flush()
        engine.config.close()
        await engine.close()
