"""Callbacks (8.3 ``advanced: callback``) kept in the store, so that the node that takes a dead owner's domain
places the callbacks it had scheduled (``pending_callbacks``).

The engine still schedules each on its clock; in a cluster it also keeps a row (written in a fenced transaction,
in the background: the callback is due seconds later) and, when the timer fires, takes the row first: the node
whose transaction deletes it places the call, so a callback is placed once even when a paused old owner wakes up
with the same timer due. A new owner re-schedules the rows of each domain it takes (``resume``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from vpbx.engine import durable, engine_of
from vpbx.store.repositories import cluster as repo

if TYPE_CHECKING:
    from vpbx.cluster.ownership import Ownership

log = logging.getLogger("vpbx.cluster.callbacks")


class Callbacks:
    def __init__(self, own: Ownership) -> None:
        self.own = own
        self._writes: set[asyncio.Task[None]] = set()
        self._domains: dict[str, int] = {}  # callbacks scheduled here -> their domain
        self._kept: set[str] = set()  # ... whose row is in the store

    async def _fenced(self, conn: Any, domain_id: int) -> None:
        token = await repo.token_for_write(conn, domain_id)
        if token is None or token != self.own.tokens.get(domain_id):
            raise durable.Fenced(frozenset({domain_id}))

    def keep(self, domain_id: int, delay: float, data: dict[str, Any]) -> str:
        """Store the callback (in the background); its key."""
        key = uuid.uuid4().hex
        due = engine_of(self.own.rt).now() + timedelta(seconds=delay)
        body = orjson.dumps({"domain_id": domain_id, **data}).decode()
        self._domains[key] = domain_id

        async def write() -> None:
            try:
                async with self.own.db.begin() as conn:
                    await self._fenced(conn, domain_id)
                    await repo.keep_callback(conn, key, domain_id, due, body)
                self._kept.add(key)
            except durable.Fenced:
                log.warning("callback not kept: the domain has another owner", extra={"domain_id": domain_id})
            except Exception:
                log.exception("keeping a callback failed (it is still placed by this node)",
                              extra={"domain_id": domain_id})

        task = asyncio.get_running_loop().create_task(write())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return key

    async def take(self, key: str) -> bool:
        """Whether this node places the callback now: the row was ours to delete, under our token (or was never
        written: the store failed then, and this node's timer is all there is)."""
        domain_id = self._domains.pop(key, None)
        if domain_id is None:
            return True
        for task in list(self._writes):  # a row is written before it is taken
            await asyncio.shield(task)
        kept = key in self._kept
        self._kept.discard(key)
        try:
            async with self.own.db.begin() as conn:
                await self._fenced(conn, domain_id)
                taken = await repo.take_callback(conn, key)
        except durable.Fenced:
            return False
        return taken or not kept

    async def resume(self, domain_id: int) -> int:
        """Schedule the domain's stored callbacks on this node (it has just taken the domain)."""
        engine = engine_of(self.own.rt)
        async with self.own.db.connect() as conn:
            rows = await repo.pending_callbacks(conn, domain_id)
        now = engine.now()
        for key, due, body in rows:
            data = orjson.loads(body)
            self._domains[key] = domain_id
            self._kept.add(key)
            engine._schedule_callback(domain_id, data["domain_name"], data["timezone"], client=data["client"],
                                      clid=data["clid"], group_id=data["group_id"], origin=data["origin"],
                                      attempt=int(data["attempt"]),
                                      delay=max(0.0, (due - now).total_seconds()), key=key)
        return len(rows)
