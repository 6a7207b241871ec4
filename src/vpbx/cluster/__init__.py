"""vpbx as a cluster on PostgreSQL (README "Running a cluster").

Every node serves every request; each domain's live state (calls and their timers, simulated devices, traffic
runs, callbacks) lives on exactly one node, its owner, decided by a lease in PostgreSQL with a fencing token
(``ownership``). A node that does not own a domain forwards the domain's engine commands to the owner
(``forward.on_owner``, one hop). Caches are invalidated cluster-wide by PostgreSQL LISTEN/NOTIFY
(``store.changes``): no other service. On SQLite nothing here runs: one process owns everything.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from vpbx.runtime import Runtime
from vpbx.settings import Settings
from vpbx.store import db

if TYPE_CHECKING:
    from fastapi import FastAPI

    from vpbx.cluster.ownership import Ownership

log = logging.getLogger("vpbx.cluster")

KEY = "cluster"


def enabled(settings: Settings) -> bool:
    """On with a PostgreSQL store unless switched off; never on SQLite (one writer: one process)."""
    if db.is_sqlite(settings.db_url):
        return False
    return settings.cluster is not False


def cluster_of(runtime: Runtime) -> Ownership | None:
    """This node's ownership of domains; None outside a cluster (then this process owns every domain)."""
    return cast("Ownership | None", runtime.extras.get(KEY))


async def start(runtime: Runtime) -> None:
    """Start-up hook (after the engine): register the node, take its share of the domains (ending the calls their
    dead owners left), then keep the leases."""
    if not enabled(runtime.settings):
        return
    from vpbx.cluster.nodes import this_node
    from vpbx.cluster.ownership import Ownership

    own = Ownership(runtime, this_node(runtime.settings))
    runtime.extras[KEY] = own
    await own.start()


async def stop(runtime: Runtime) -> None:
    """Shutdown hook (after the engine flushed): give every lease up at once, so the domains move without waiting
    for their leases to expire."""
    own = cluster_of(runtime)
    runtime.extras.pop(KEY, None)
    if own is not None:
        await own.stop()
    client = runtime.extras.pop("cluster.http", None)
    if client is not None:
        await client.close()  # type: ignore[attr-defined]


def install(app: FastAPI) -> None:
    """``/readyz`` and the handler that answers forwarded requests (``forward.Answered``)."""
    from vpbx.cluster import forward

    forward.install(app)
