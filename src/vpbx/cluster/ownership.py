"""Which node owns each domain: leases in PostgreSQL with fencing tokens.

Why a lease table rather than session advisory locks: an advisory lock lives as long as one connection, so a node
paused (SIGSTOP) keeps its locks while its socket stays open (minutes, until TCP keepalive gives up) and nobody
could take its domains within seconds; and a lock carries no number a later write could be checked against. A lease
row (``domain_leases``: domain_id, node_id, token, expires_at on the database's clock) expires on time whatever
the old owner's state, and its token (one more at each change of owner) fences the old owner's writes.

* Claim: an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now`` (``repositories.cluster.claim``): one
  statement, one winner. Renew: every ``cluster_tick`` one UPDATE of every lease the node holds; a lease missing
  from its answer was taken by another node: the domain's live state is given up (``durable.forget``).
* Fencing: every write transaction of the engine reads its domains' tokens ``FOR SHARE`` (``check``) and aborts if
  one differs from the token this node claimed: a paused node that wakes up after another took its domains writes
  nothing for them. A claim waits for a write holding the row; the new owner's recovery then sees everything the
  old owner committed, and ends those calls once (``engine.recovery.recover_domain``).
* Balance: each node aims at ``ceil(domains / live nodes)``; a node over it releases its idle domains (no live
  call, no traffic run: moving a busy domain would end its calls; no simulated devices or outside numbers set:
  they live in the owner's memory), a node under it claims free ones. A request for
  a domain nobody owns (a new domain, a dead owner's expired lease) is claimed by the node it reaches.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vpbx.cluster.callbacks import Callbacks
from vpbx.cluster.nodes import Node
from vpbx.engine import durable, engine_of, recovery, traffic
from vpbx.runtime import Runtime
from vpbx.store import db
from vpbx.store.repositories import cluster as repo

log = logging.getLogger("vpbx.cluster")

CONNECTIONS = 3  # the cluster's own pool: request bursts never delay a renewal past the lease
READY_WAIT = 10.0  # seconds a request waits for its domain's recovery on a node that just took it
FORGET_NODES = 3600.0  # node rows silent this long are deleted


def store_engine(url: str, ttl: float) -> AsyncEngine:
    """The cluster's own connections to the store. A node cut off mid-step leaves its transaction idle on the
    server, holding the lease rows it updated: the server ends it after half a lease, so the other nodes' claims
    wait that long, not the hours TCP takes to notice (steps, claims and callbacks' writes are all short)."""
    hold = {"idle_in_transaction_session_timeout": str(int(ttl * 500))}
    return db.create_engine(url, pool_size=CONNECTIONS, max_overflow=2, pool_timeout=ttl,
                            connect_args={"server_settings": hold})


class Ownership:
    def __init__(self, runtime: Runtime, node: Node) -> None:
        self.rt = runtime
        self.node = node
        self.ttl = runtime.settings.cluster_lease
        self.tick = runtime.settings.cluster_tick
        self.db: AsyncEngine = self._engine()
        self._disposing: asyncio.Task[None] | None = None
        self.tokens: dict[int, int] = {}  # domains this node holds -> their fencing token
        self.ready: dict[int, asyncio.Event] = {}  # set once the domain's leftover calls are ended
        self.leases: dict[int, repo.Lease] = {}  # the last view of every lease (owners to forward to)
        self.nodes: list[repo.Node] = []
        self._claims: dict[int, asyncio.Task[bool]] = {}
        self._renewed = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.callbacks: Callbacks

    def _engine(self) -> AsyncEngine:
        return store_engine(self.rt.engine.url.render_as_string(hide_password=False), self.ttl)

    # --- life ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        engine = engine_of(self.rt)
        engine.fence = self.check
        engine.callbacks = self.callbacks = Callbacks(self)
        await self.step()
        await self._settle()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="vpbx-cluster")
        log.info("cluster node up", extra={"node": self.node.node_id, "node_url": self.node.url,
                                           "domains": sorted(self.tokens)})

    async def _settle(self) -> None:
        """At start, wait (at most one lease) until every lease another node holds is either renewed (that node is
        alive) or expired and taken: a node started after a crash then ends the crashed run's calls before it
        answers, as a single server does."""
        me = self.node.node_id
        pending = {d: lease.expires_at for d, lease in self.leases.items() if lease.live and lease.node_id != me}
        deadline = time.monotonic() + self.ttl + 2 * self.tick
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(self.tick)
            await self.step()
            pending = {d: at for d, at in pending.items()
                       if (lease := self.leases.get(d)) is not None and lease.live and lease.node_id != me
                       and at is not None and lease.expires_at is not None and lease.expires_at <= at}

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        try:
            async with self.db.begin() as conn:
                await repo.release_all(conn, self.node.node_id)
                await repo.forget_node(conn, self.node.node_id)
        except Exception:
            log.warning("releasing the leases at stop failed: they expire by themselves", exc_info=True)
        self.tokens.clear()
        await self.db.dispose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                # A link that went dark blackholes the query (no error for minutes): a step has one lease at most.
                await asyncio.wait_for(self.step(), self.ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cluster step failed", exc_info=True)
                if isinstance(exc, TimeoutError):  # its connections may hang for minutes: start on fresh ones
                    old, self.db = self.db, self._engine()
                    self._disposing = asyncio.get_running_loop().create_task(old.dispose(close=False))
                if self.tokens and time.monotonic() - self._renewed > self.ttl:
                    # Cut off from the store past the lease: others may own these domains now.
                    self._lose(set(self.tokens), "lease not renewed")

    # --- one step: heartbeat, renew, balance --------------------------------------------------------------------

    async def step(self) -> None:
        started = time.monotonic()
        before = dict(self.tokens)  # a domain claimed while this step runs is not judged by its renewal
        async with self.db.begin() as conn:
            await repo.beat(conn, self.node.node_id, self.node.url)
            held = await repo.renew(conn, self.node.node_id, self.ttl, set(self.tokens) | set(self._claims))
            nodes = await repo.live_nodes(conn, self.ttl)
            domains = await repo.domain_ids(conn)
            leases = await repo.leases(conn)
            if int(started) % 60 == 0:
                await repo.forget_dead_nodes(conn, FORGET_NODES)
        self._renewed = started
        lost = {d for d, token in before.items() if held.get(d) != token and self.tokens.get(d) == token}
        if lost:
            self._lose(lost, "taken by another node")
        self.leases = {lease.domain_id: lease for lease in leases}
        self.nodes = nodes
        await self._balance(domains, nodes)

    def target(self, domains: int, nodes: int) -> int:
        return math.ceil(domains / max(1, nodes))

    async def _balance(self, domains: list[int], nodes: list[repo.Node]) -> None:
        count = len(nodes) + (0 if any(n.node_id == self.node.node_id for n in nodes) else 1)
        target = self.target(len(domains), count)
        mine = [d for d in self.tokens if d in self.ready and self.ready[d].is_set()]
        if len(mine) > target and count > 1:
            for d in [d for d in mine if self._idle(d)][:len(mine) - target]:
                await self._release(d)
        elif len(mine) < target:
            free = [d for d in domains if d not in self.tokens and d not in self._claims
                    and (d not in self.leases or not self.leases[d].live)]
            # Each node tries the free domains in its own order: nodes starting together rarely contend.
            free.sort(key=lambda d: hashlib.blake2b(f"{self.node.node_id}/{d}".encode(), digest_size=4).digest())
            for d in free[:target - len(mine)]:
                await self.acquire(d)

    def _idle(self, domain_id: int) -> bool:
        if any(c.domain_id == domain_id for c in engine_of(self.rt).live.values()):
            return False
        holds = getattr(self.rt.telephony, "holds", None)  # the simulator's devices would not move with it
        if holds is not None and holds(domain_id):
            return False
        run = traffic.run_of(self.rt, domain_id)
        return run is None or run.state != "running"

    async def _release(self, domain_id: int) -> None:
        token = self.tokens.pop(domain_id, None)
        self.ready.pop(domain_id, None)
        if token is None:
            return
        await engine_of(self.rt).flush()  # what was queued for the domain is written under our token first
        async with self.db.begin() as conn:
            await repo.release(conn, domain_id, self.node.node_id, token)
        log.info("released domain (balance)", extra={"domain_id": domain_id, "node": self.node.node_id})

    # --- taking and losing domains --------------------------------------------------------------------------------

    def owns(self, domain_id: int) -> bool:
        return domain_id in self.tokens

    async def acquire(self, domain_id: int) -> bool:
        """Own the domain if nobody else does (claim, then end the calls its last owner left live); True when this
        node owns it and it is ready."""
        event = self.ready.get(domain_id)
        if event is not None and event.is_set() and domain_id in self.tokens:
            return True
        if domain_id in self.tokens and domain_id not in self._claims:
            return await self._wait_ready(domain_id)
        task = self._claims.get(domain_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._acquire(domain_id))
            self._claims[domain_id] = task
            task.add_done_callback(lambda _t: self._claims.pop(domain_id, None))
        return await asyncio.shield(task)

    async def _wait_ready(self, domain_id: int) -> bool:
        event = self.ready.get(domain_id)
        if event is None:
            return False
        try:
            await asyncio.wait_for(event.wait(), READY_WAIT)
        except TimeoutError:
            return False
        return domain_id in self.tokens

    async def _acquire(self, domain_id: int) -> bool:
        if self._stopping:
            return False
        async with self.db.begin() as conn:
            token = await repo.claim(conn, domain_id, self.node.node_id, self.ttl)
        if token is None:
            return False
        self.tokens[domain_id] = token
        event = self.ready[domain_id] = asyncio.Event()
        began = time.monotonic()
        try:
            ended = await recovery.recover_domain(self.rt, domain_id)
        except durable.Fenced:
            self._lose({domain_id}, "taken by another node during recovery")
            return False
        except Exception:  # recovery retried already; the calls stay in the store for a later owner
            log.exception("ending the calls left live failed", extra={"domain_id": domain_id})
            ended = 0
        try:
            resumed = await self.callbacks.resume(domain_id)
        except Exception:
            log.exception("resuming the domain's callbacks failed", extra={"domain_id": domain_id})
            resumed = 0
        event.set()
        self.leases[domain_id] = repo.Lease(domain_id, self.node.node_id, token, True, self.node.url)
        log.info("took domain", extra={"domain_id": domain_id, "token": token, "node": self.node.node_id,
                                       "calls_ended": ended, "callbacks": resumed,
                                       "ms": round((time.monotonic() - began) * 1000, 1)})
        return True

    def _lose(self, domains: set[int], why: str) -> None:
        """Give up the domains' live state: another node owns them (or may: our lease lapsed)."""
        for d in domains:
            self.tokens.pop(d, None)
            event = self.ready.pop(d, None)
            if event is not None:
                event.set()  # requests waiting for it go on to find the new owner
            run = traffic.run_of(self.rt, d)
            if run is not None:
                run.stop()
        dropped = durable.forget(engine_of(self.rt), domains)
        log.warning("lost domains: %s", why, extra={"domains": sorted(domains), "calls_dropped": dropped,
                                                    "node": self.node.node_id})

    # --- fencing ------------------------------------------------------------------------------------------------

    async def check(self, session: AsyncSession, domains: set[int]) -> None:
        """Inside an engine write transaction: refuse it (``durable.Fenced``) unless every domain's lease still
        carries the token this node claimed."""
        held = await repo.tokens_for_write(session, domains, hold=self.ttl / 2)
        stale = frozenset(d for d in domains if d not in self.tokens or held.get(d) != self.tokens[d])
        if stale:
            raise durable.Fenced(stale)

    # --- finding owners -----------------------------------------------------------------------------------------

    async def live_nodes(self) -> list[repo.Node]:
        """The live nodes as the store sees them now: a node started since the last step is among them."""
        async with self.db.connect() as conn:
            self.nodes = await repo.live_nodes(conn, self.ttl)
        return self.nodes

    async def refresh(self, domain_id: int) -> repo.Lease | None:
        async with self.db.connect() as conn:
            found = await repo.leases(conn, [domain_id])
        lease = found[0] if found else None
        if lease is not None:
            self.leases[domain_id] = lease
        else:
            self.leases.pop(domain_id, None)
        return lease

    def view(self) -> dict[str, object]:
        """What ``/readyz`` shows."""
        return {"node": self.node.node_id, "url": self.node.url,
                "domains": sorted(d for d in self.tokens if d in self.ready and self.ready[d].is_set()),
                "nodes": [n.node_id for n in self.nodes]}
