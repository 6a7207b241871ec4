"""Engine commands reach the domain's owner: ``on_owner`` runs them here when this node owns the domain, else
sends the request to the owner and answers with its answer verbatim (one hop: a forwarded request is never
forwarded again). ``on_all``: the virtual clock's advance reaches every node.

The places that go through here: the simulator (``/sim/v1``: calls, devices, outside numbers, traffic, trunk
registrations; the router-level dependency ``owner_gate``), REST ``makecall`` (the same dependency) and the legacy
``makeCall`` (``legacy.serve``), the clock's advance (``on_all``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.responses import Response

from vpbx import __version__
from vpbx.api.responses import json_response
from vpbx.cluster import cluster_of
from vpbx.notify.http1 import AnswerError, Client
from vpbx.runtime import Runtime

if TYPE_CHECKING:
    from vpbx.cluster.ownership import Ownership

log = logging.getLogger("vpbx.cluster.forward")

HEADER = "x-vpbx-forwarded-by"  # the node that forwarded: the receiver never forwards again
CLIENT = "cluster.http"  # runtime.extras: the keep-alive client to the other nodes
TIMEOUT, CONNECT_TIMEOUT = 30.0, 1.0  # seconds: a dead owner refuses at once; a command may run long (clock)
MAX_FORWARDED = 64 * 1024 * 1024  # bytes: an engine command's answer is small; this only bounds a broken one
RETRY_PAUSE = 0.1  # seconds between looks for a new owner while the old one's lease runs out
# Not copied: hop-by-hop headers, and what the next hop computes again.
_DROP_REQUEST = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                           "content-length", "accept-encoding", "proxy-authorization", "proxy-connection", HEADER})
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                            "date", "server"})


class Answered(Exception):
    """The request was answered elsewhere (by the owner), or cannot be now (503): this is the answer."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered by the domain's owner")
        self.response = response


def _moving() -> Response:
    response = json_response({"message": "Domain is moving to another node, try again"}, 503)
    response.headers["Retry-After"] = "1"
    return response


def _client(runtime: Runtime) -> Client:
    """Kept-alive connections to the other nodes: the notifier's HTTP client (``notify.http1``); the hop costs
    0.7-0.8 ms on loopback against 1.7-1.8 with httpx's. Nodes are on private addresses: no SSRF guard here."""
    client = runtime.extras.get(CLIENT)
    if not isinstance(client, Client):
        client = Client(True, 256, f"vpbx/{__version__} (cluster)", MAX_FORWARDED, connect_timeout=CONNECT_TIMEOUT)
        runtime.extras[CLIENT] = client
    return client


async def on_owner(request: Request, runtime: Runtime, domain_id: int, *, body: bytes | None = None,
                   content_type: str | None = None) -> None:
    """Return when this node owns the domain (the caller runs the command here); otherwise raise ``Answered`` with
    the owner's answer. ``body``: what to send instead of the request's own (a form already consumed)."""
    own = cluster_of(runtime)
    if own is None:
        return  # one process owns everything
    if own.owns(domain_id):
        if await own.acquire(domain_id):  # ready at once unless it is ending its last owner's calls
            return
    forwarded = request.headers.get(HEADER)
    deadline = time.monotonic() + own.ttl * 2 + 1.0
    while True:
        lease = own.leases.get(domain_id)
        if lease is None or not lease.live or lease.node_id == own.node.node_id or not lease.url:
            lease = await own.refresh(domain_id)
        if lease is None or not lease.live:
            if await own.acquire(domain_id):
                return
            lease = await own.refresh(domain_id)
        if lease is not None and lease.live and lease.node_id != own.node.node_id and lease.url:
            if forwarded:
                raise Answered(_moving())  # one hop: the sender's view was stale; the client tries again
            try:
                raise Answered(await _send(request, runtime, own, lease.url, body, content_type))
            except (OSError, AnswerError, TimeoutError) as exc:  # no answer from it: it is dead, or moving
                log.info("owner unreachable, looking again", extra={"domain_id": domain_id,
                                                                  "owner": lease.node_id, "error": repr(exc)})
                own.leases.pop(domain_id, None)
        elif own.owns(domain_id) and await own.acquire(domain_id):
            return
        if time.monotonic() > deadline:
            raise Answered(_moving())
        await asyncio.sleep(RETRY_PAUSE)


async def _send(request: Request, runtime: Runtime, own: Ownership, base: str, body: bytes | None,
                content_type: str | None) -> Response:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
               if k.decode("latin-1").lower() not in _DROP_REQUEST]
    if content_type is not None:
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("content-type", content_type)]
    headers.append((HEADER, own.node.node_id))
    url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    content = body if body is not None else await request.body()
    head = request.method == "HEAD"  # sent as GET (its answer's length is not followed by a body), body dropped
    answer = await _client(runtime).request("GET" if head else request.method, url, content, headers, TIMEOUT)
    if len(answer.body) >= MAX_FORWARDED:  # answered, so not sent again: a command may not run twice
        log.warning("an answer too large to forward", extra={"path": request.url.path, "status": answer.status})
        return json_response({"message": "The answer of the domain's owner is too large to forward"}, 502)
    response = Response(content=b"" if head else answer.body, status_code=answer.status)
    for name, value in answer.raw:
        if name.lower().decode("latin-1") not in _DROP_RESPONSE:
            response.raw_headers.append((name.lower(), value))
    return response


async def on_all(request: Request, runtime: Runtime) -> None:
    """Send the request (already run here) to every other live node; a forwarded one stops here. A node that does
    not answer is logged (it is dead, or will be fenced)."""
    own = cluster_of(runtime)
    if own is None or request.headers.get(HEADER):
        return
    # Read now, not the last step's view: a node that became ready since is one the request must reach.
    others = [n for n in await own.live_nodes() if n.node_id != own.node.node_id and n.url]
    results = await asyncio.gather(*(_send(request, runtime, own, n.url, None, None) for n in others),
                                   return_exceptions=True)
    for node, result in zip(others, results, strict=True):
        if isinstance(result, BaseException) or result.status_code >= 400:
            log.warning("a node did not take the request", extra={
                "node": node.node_id, "path": request.url.path,
                "status": getattr(result, "status_code", None), "error": repr(result)[:200]})


async def owner_gate(request: Request) -> None:
    """Dependency of the engine's routes: runs the request on the key's domain's owner. Resolving the key here is
    the request's own authentication (cached: the route's ``authenticate`` reads the same principal)."""
    runtime: Runtime = request.app.state.runtime
    if cluster_of(runtime) is None or request.url.path.startswith("/sim/v1/clock"):
        return
    from vpbx.api.auth import principal_for

    principal = await principal_for(runtime, request.headers.get("x-api-key"))
    await on_owner(request, runtime, principal.domain_id)


async def _answered(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Answered)
    return exc.response


def install(app: FastAPI) -> None:
    app.add_exception_handler(Answered, _answered)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Readiness: 200 once the node serves, with the domains it owns (``"all"`` outside a cluster)."""
        if not app.state.ready:
            return json_response({"status": "starting"}, 503)
        own = cluster_of(app.state.runtime)
        if own is None:
            return json_response({"status": "ok", "cluster": False, "domains": "all"})
        return json_response({"status": "ok", "cluster": True, **own.view()})
