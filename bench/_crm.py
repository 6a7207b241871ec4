"""A real loopback CRM for the benchmarks: ``vpbx.crm.Receiver`` under uvicorn (uvloop, httptools) in its own
process, answering ``contact`` with a name and taking every push; ``GET /count`` says how many it took."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import free_port

TOKEN = "bench-crm-token"


def _serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    import uvicorn

    from vpbx.crm.receiver import Receiver

    counts: Counter[str] = Counter()
    receiver = Receiver(crm_token=TOKEN, dedupe_size=1_000_000)

    # Handlers that do not block are ``async def``, as the receiver's documentation says: a plain function runs in
    # a worker thread (for a CRM's blocking lookups), a hop that costs the answer ~120 us.
    @receiver.on_contact
    async def who(query: Any) -> dict[str, str]:
        counts["contact"] += 1
        return {"contact_name": "ООО Ромашка"}

    for kind in ("history", "event", "rating", "webhook"):
        async def took(notice: Any, kind: str = kind) -> None:
            counts[kind] += 1
        getattr(receiver, f"on_{kind}")(took)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/count":
            body = json.dumps(counts).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await receiver(scope, receive, send)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            loop="uvloop", http="httptools", lifespan="off", backlog=1024)
    server = uvicorn.Server(config)
    ready.set()
    server.run()


@contextmanager
def crm() -> Iterator[str]:
    """The CRM's base URL (``/crm`` takes the PBX's requests), while the block runs."""
    port = free_port()
    ready = multiprocessing.get_context("spawn").Event()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, ready), daemon=True)
    proc.start()
    ready.wait(30)
    from _common import wait_http

    wait_http(f"http://127.0.0.1:{port}/count", timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(10)


def counts(base: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"{base}/count", timeout=5) as r:
        return dict(json.loads(r.read()))
