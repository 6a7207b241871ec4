"""``vpbx serve --workers N``: N processes on one host sharing the port, each a cluster node (``vpbx.cluster``).

Why N ``vpbx serve`` processes with SO_REUSEPORT rather than uvicorn's own workers: each node needs, besides the
shared port, a port of its own that the other nodes forward a domain's commands to (the shared port would hand a
forwarded request to any process, maybe not the owner); uvicorn serves a list of sockets per process, not one per
worker. The supervisor migrates the store and creates the demo once, then starts the workers, passes SIGTERM/SIGINT
on and exits when they all have (with the worst exit code).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

from vpbx.settings import Settings

log = logging.getLogger("vpbx.workers")

SLOT = "VPBX_WORKER_SLOT"  # set in a worker's environment: its number (0..N-1)


def slot() -> int | None:
    value = os.environ.get(SLOT, "")
    return int(value) if value.isdigit() else None


def _prepare(settings: Settings) -> None:
    """Migrate and create the demo once, before the workers race for it."""
    from vpbx.app import build_runtime
    from vpbx.bootstrap import ensure_demo
    from vpbx.secrets_store import box_for
    from vpbx.store import db

    async def run() -> None:
        runtime = build_runtime(settings)
        try:
            await db.upgrade(runtime.engine, box=box_for(settings))
            if settings.demo:
                await ensure_demo(runtime)
        finally:
            runtime.reader.dispose()
            await runtime.engine.dispose()

    asyncio.run(run())


def supervise(settings: Settings, workers: int) -> int:
    _prepare(settings)
    argv = [sys.executable, "-c", "from vpbx.cli import main; main()", *sys.argv[1:]]
    children = [subprocess.Popen(argv, env={**os.environ, SLOT: str(i)}) for i in range(workers)]
    log.info("workers started", extra={"workers": workers, "pids": [c.pid for c in children]})

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max((abs(c) for c in codes), default=0)


def sockets(settings: Settings) -> tuple[list[socket.socket], Settings]:
    """The shared port (SO_REUSEPORT: the kernel spreads connections over the workers) and this worker's own
    port on the same address; the settings with ``cluster_url`` naming the latter."""
    from vpbx.cluster.nodes import url_of

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    shared = socket.socket(family, socket.SOCK_STREAM)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    shared.bind((settings.host, settings.port))
    own = socket.socket(family, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.bind((settings.host, 0))
    port = own.getsockname()[1]
    base = url_of(settings.model_copy(update={"port": port, "cluster_url": ""}))
    return [shared, own], settings.model_copy(update={"cluster_url": base})
