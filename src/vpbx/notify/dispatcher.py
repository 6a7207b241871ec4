"""Delivers the outbox: claims due rows in batches under a lease, posts them concurrently, records outcomes.

* At-least-once: a row is leased (committed) before its request and settled after it; a row whose
  attempt was in flight when the process died is tried again once its lease expires.
* Order: a row waits while an earlier row of its key (callid) is pending, so one call's events and
  its history reach the CRM in order; other keys and other domains never wait for it.
* Isolation: at most ``notify_domain_concurrency`` requests per domain and a per-request timeout,
  so one slow CRM does not slow another domain.
* Time comes from ``runtime.clock``: retries are clock timers, so ``VirtualClock.advance`` drives
  them (and on a virtual clock a timer returns only once the deliveries it made due are settled).
* Outages: a CRM failing as a whole is probed every ``notify_probe_interval`` (its oldest pending push
  is tried at once, whatever its back-off), and the first success after a failure streak ends the
  back-off of all its pending pushes: a recovered CRM gets its backlog at full speed, not hours later.
  Failing for ``notify_keep_days`` with no success switches the integration off, keeping what is pending.
* ``crm_token`` is put into the body here, at send time: the outbox stores bodies without it, so
  the token rests only encrypted (``vpbx.secrets_store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from vpbx import logs
from vpbx.clock import Timer
from vpbx.metrics import NOTIFY_ATTEMPTS, NOTIFY_FINISHED, NOTIFY_LATENCY, NOTIFY_SWITCHED_OFF
from vpbx.notify import outbox, retry, signing
from vpbx.notify.payloads import with_token
from vpbx.notify.ssrf import allow_private
from vpbx.notify.transport import Answer, client_session, post
from vpbx.runtime import Runtime
from vpbx.secrets_store import box_for, open_value
from vpbx.store.repositories import outbox as repo
from vpbx.tasks import spawn

if TYPE_CHECKING:
    from vpbx.notify.http1 import Client

log = logging.getLogger("vpbx.notify")

OFF = "integration off"
EXPIRED = "expired"  # an event past its lifetime: never sent
LEASE_ROUNDS = 4  # request timeouts a claim outlasts (a crashed node's rows wait this long to be sent again)
LAPSED = "lease lapsed"  # a claimed row whose lease would end before its request could: released, not sent
COALESCE = 0.005  # seconds the flusher waits for more outcomes before a pass (at most per_domain of them)
TARGET_TTL = 2.0  # seconds an integration's URL/secret/state is cached (another process may change it)


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: Any) -> Any:
    """``metric.labels(*labels)``, looked up once (prometheus_client's ``labels`` costs a few us a call)."""
    key = (id(metric), *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


@dataclass(slots=True)
class Claimed:
    id: int
    uid: str
    domain_id: int
    command: Any
    key: str | None
    url: str | None
    body: bytes
    content_type: str
    attempts: int
    round_attempts: int
    created_at: datetime
    leased_until: datetime


@dataclass(slots=True)
class Target:
    enabled: bool
    crm_url: str
    signing_secret: str | None  # opened (clear): held in memory only
    loaded: float
    crm_token: str = ""  # opened (clear)


@dataclass(slots=True)
class Settled:
    row: Claimed
    url: str
    at: datetime
    answer: Answer
    outcome: retry.Outcome
    state: str  # pending (retry later) | delivered | failed
    next_at: datetime | None


class Dispatcher:
    def __init__(self, runtime: Runtime, *, rng: retry.RandomSource | None = None) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.clock = runtime.clock
        self.owner = uuid.uuid4().hex
        self.private_ok = allow_private(s)
        self.timeout = s.notify_timeout
        self.batch = s.notify_batch
        self.max_inflight = s.notify_max_inflight
        self.per_domain = s.notify_domain_concurrency
        # Rows of one domain claimed ahead of its free request slots keep its pipe full; a lease
        # outlasts LEASE_ROUNDS rounds of timeouts. With a CRM that answers, the rows claimed ahead are sent long
        # before that (a deeper claim keeps the requests busy while a pass runs: PostgreSQL's pass is tens of ms);
        # with one that hangs, a row whose lease would end before its request could is released, not sent, so a
        # lapsed claim another node may take is never posted twice.
        self._claim_rounds = repo.PassStore.CLAIM_ROUNDS  # the store's own, once started
        self.lease = timedelta(seconds=max(s.notify_lease, s.notify_timeout * (LEASE_ROUNDS + 1) + 1))
        self._post_time = timedelta(seconds=s.notify_timeout + 1)  # what a request may take, and a margin
        self.poll = s.notify_poll
        self.policy = retry.Policy.from_settings(s)
        self.rng = rng or random.Random()
        self.http: Client | None = None
        self._inflight: dict[int, Claimed] = {}
        self._active: set[int] = set()  # the domains of the last claim's rows
        self._domain_load: Counter[int] = Counter()
        # Claimed rows waiting for one of their domain's ``per_domain`` workers (a worker takes them in claim
        # order until none is left): a task per worker, not per row, and no semaphore to wait on (profiled: the
        # rows claimed ahead each parked a task on the semaphore, a tenth of a delivery's cost).
        self._queues: dict[int, deque[Claimed]] = {}
        self._workers: Counter[int] = Counter()
        self._targets: dict[int, Target] = {}
        self._health: dict[int, tuple[datetime | None, datetime | None]] = {}
        self._settled: list[Settled] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._settled_ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._pass_lock = asyncio.Lock()  # one pass at a time (on SQLite it also takes the file's writer turn)
        self._store: repo.PassStore | None = None
        self._timer: Timer | None = None
        self._timer_due: datetime | None = None
        self._probe_timer: Timer | None = None
        self._probes: set[int] = set()  # failing domains whose oldest pending push the next pass tries now
        self._not_before: dict[int, datetime] = {}  # a CRM's Retry-After: no probe before it
        self._loop_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._stopping = False

    # lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._store = repo.for_engine(self.runtime.engine, self.runtime.sessions)
        self._claim_rounds = self._store.CLAIM_ROUNDS
        outbox.register(self.runtime.engine.sync_engine, self)
        self._loop_task = spawn(self._run(), name="vpbx-notify-claim")
        self._flush_task = spawn(self._flusher(), name="vpbx-notify-flush")

    async def stop(self, grace: float = 2.0) -> None:
        """Stop claiming; let attempts in flight finish for ``grace`` s and record them.

        Attempts still running after that are abandoned: their rows keep their lease and are tried
        again after it expires (their outcome is unknown, so the CRM may see them twice)."""
        self._stopping = True
        outbox.register(self.runtime.engine.sync_engine, None)
        if self._timer is not None:
            self._timer.cancel()
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        if self._settled:
            with contextlib.suppress(Exception):
                await self.pump(self._settled)
            self._settled = []
        if self.http is not None:
            await self.http.close()
        if self._store is not None:
            await self._store.close()

    @property
    def depth(self) -> int:
        """Rows a domain holds claimed at most."""
        return self.per_domain * self._claim_rounds

    @property
    def coalesce(self) -> int:
        """Outcomes a pass waits for (at most COALESCE s): a pass's claim walks the rows in flight whatever it
        records, so fewer, larger passes (half a domain's claimed depth: its requests stay busy meanwhile)."""
        return max(self.per_domain, self.depth // 2)

    def wake(self) -> None:
        self._wake.set()

    # claiming ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            try:
                claimed = await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox claim failed")
            if claimed and len(self._inflight) < self.max_inflight:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def pump(self, settled: list[Settled] | None = None) -> int:
        """One store pass: record ``settled`` outcomes, then lease the due rows there is room for and
        start their deliveries, in one transaction. Returns how many rows were claimed."""
        settled = settled or []
        async with self._pass_lock:
            done = Counter(s.row.domain_id for s in settled)
            room = self.max_inflight - len(self._inflight) + len(settled)
            now = self.clock.now()
            # Rows a domain holds after this pass's outcomes: it is claimed up to ``depth`` in all (not
            # ``depth`` more), so a domain with free slots is never skipped and one without is never walked
            # into (profiled: a domain always over its depth made most claims walk every due row for nothing).
            load = {d: n - done[d] for d, n in self._domain_load.items() if n - done[d] > 0}
            busy = [d for d, n in load.items() if n >= self.depth]
            limit = min(self.batch, room) if not self._stopping else 0
            work = await self._work(settled, now)
            work.owner = self.owner  # releases name it too
            if limit > 0:
                mono = time.monotonic()
                work.limit = limit
                work.per_domain = self.depth
                work.lease_until = now + self.lease
                work.busy = busy
                work.load = load
                # Rows in flight are skipped by their lease; name only those it may not cover: released
                # by this pass, or (a stalled attempt) leased no longer.
                work.inflight = work.released + [i for i, c in self._inflight.items() if c.leased_until <= now]
                work.fresh = frozenset(d for d, t in self._targets.items() if t.loaded + TARGET_TTL >= mono)
                # One domain delivering: no other domain's rows to find past its room (a new domain is found
                # once this one is busy, the next pass at the latest; then both count and the walk widens). Its
                # room is what it may take: a walk sized by the pass's limit instead went three times past it
                # (measured on SQLite: 288 rows walked a pass for 64 claimed, 1.2 ms; sized by the room, 0.85 ms).
                # A busy domain's rows are skipped, so then the walk is for others': sized by the limit.
                known = self._active | load.keys()
                if len(known) <= 1:
                    room_of = self.depth - load.get(next(iter(known)), 0) if known else 0
                    took = min(limit, room_of) if room_of > 0 else limit
                    work.scan = took + took // 2
                else:
                    work.scan = 0
                work.probe = sorted(d for d in self._probes if self._not_before.get(d, now) <= now)
                work.probe_later, self._probes = now + self.policy.probe_every, set()
            assert self._store is not None, "dispatcher not started"
            result = await self._store.run(work)
            self._after_health(work)
            mono = time.monotonic()
            for i in result.integrations:
                self._targets[i.domain_id] = self._target(i, mono)
            for s in settled:
                self._inflight.pop(s.row.id, None)
                self._domain_load[s.row.domain_id] -= 1
                if self._domain_load[s.row.domain_id] <= 0:
                    del self._domain_load[s.row.domain_id]
            self._active = {r.domain_id for r in result.rows}
            for r in result.rows:
                row = Claimed(r.id, r.uid, r.domain_id, r.command, r.key, r.url, r.body.encode("utf-8"),
                              r.content_type, r.attempts, r.round_attempts, r.created_at, now + self.lease)
                self._inflight[row.id] = row
                self._domain_load[row.domain_id] += 1
                self._queue(row)
            if self._inflight:
                self._empty.clear()
            else:
                self._empty.set()
            self._arm(result.next_due, now)
            if result.again:
                self.wake()
                return len(result.rows) or 1
            return len(result.rows)

    def _target(self, i: repo.IntegrationTarget, mono: float) -> Target:
        box = box_for(self.runtime.settings)
        try:
            token = open_value(box, i.crm_token) or ""
            secret = open_value(box, i.signing_secret)
        except ValueError:
            log.warning("a CRM credential cannot be opened with this server's secret", extra={"domain_id": i.domain_id})
            token, secret = "", None
        return Target(i.enabled and not i.switched_off, i.crm_url, secret, mono, token)

    def _arm(self, due: datetime | None, now: datetime) -> None:
        """A clock timer for the earliest future retry, so a virtual clock's advance reaches it."""
        if due is None or (self._timer is not None and self._timer_due is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self.clock.call_later((due - now).total_seconds(), self._on_timer)

    async def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = None
        if self._stopping:
            return
        if self.clock.virtual:
            await self.settle()
        else:
            self.wake()

    def _arm_probe(self) -> None:
        if self._probe_timer is None and not self._stopping:
            self._probe_timer = self.clock.call_later(self.policy.probe_every.total_seconds(), self._on_probe)

    async def _on_probe(self) -> None:
        """Every ``probe_every`` while some CRM fails: try its oldest pending push now."""
        self._probe_timer = None
        if self._stopping:
            return
        failing = {d for d, (first, _) in self._health.items() if first is not None}
        if failing:
            # A CRM with nothing left to probe (all delivered, integration off, domain gone) stops being probed:
            # its streak starts again at its next failure. Otherwise every idle failing CRM would cost a pass
            # per interval for days (and a virtual clock moved a week would play each of them).
            async with self.runtime.sessions() as session:
                still = await repo.probeable(session, failing)
            for d in failing - still:
                self._health[d] = (None, self._health[d][1])
            failing = still
        if not failing:
            return
        self._probes |= failing
        self._arm_probe()
        if self.clock.virtual:
            await self.settle()
        else:
            self.wake()

    async def settle(self, rounds: int = 10_000) -> None:
        """Deliver everything due now, including rows a delivery just unblocked, and record it all."""
        for _ in range(rounds):
            await self._empty.wait()
            if not await self.pump() and not self._inflight:
                return

    # delivering ----------------------------------------------------------------------------------

    def _queue(self, row: Claimed) -> None:
        d = row.domain_id
        queue = self._queues.get(d)
        if queue is None:
            queue = self._queues[d] = deque()
        queue.append(row)
        if self._workers[d] < self.per_domain:
            self._workers[d] += 1
            task = spawn(self._worker(d, queue), name="vpbx-notify-deliver")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _worker(self, domain_id: int, queue: deque[Claimed]) -> None:
        try:
            while queue:
                await self._deliver(queue.popleft())
        finally:
            self._workers[domain_id] -= 1
            if self._workers[domain_id] <= 0:
                del self._workers[domain_id]
                if not queue and self._queues.get(domain_id) is queue:
                    del self._queues[domain_id]

    async def _deliver(self, row: Claimed) -> None:
        try:
            target = self._targets.get(row.domain_id)
            url = row.url or (target.crm_url if target else "")
            if target is None or not target.enabled:
                answer = Answer(None, b"", None, None, 0.0, OFF, refused=True)
            elif self.clock.now() + self._post_time > row.leased_until:
                answer = Answer(None, b"", None, None, 0.0, LAPSED, refused=True)
            elif row.command == "event" and self.clock.now() - row.created_at > self.policy.event_ttl:
                answer = Answer(None, b"", None, None, 0.0,
                                f"{EXPIRED}: older than {self.policy.event_ttl.total_seconds():g} s", refused=True)
            elif not url:
                answer = Answer(None, b"", None, None, 0.0, "refused: no CRM URL", refused=True)
            else:
                body = with_token(row.body, target.crm_token)
                answer = await post(self._client(), url, body, self._headers(row, target, body), self.timeout)
            self._settle(row, url, answer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never lose the row: record the failure, retry on schedule
            log.exception("delivery failed unexpectedly", extra={"outbox_id": row.id})
            self._settle(row, row.url or "", Answer(None, b"", None, None, 0.0, f"internal: {exc}"[:500]))

    def _client(self) -> Client:
        return self.client()

    def client(self) -> Client:
        """The dispatcher's HTTP client (keep-alive to every CRM), made at the first request. Contact lookups
        share it."""
        if self.http is None or self.http.closed:
            self.http = client_session(self.private_ok, limit=self.max_inflight)
        return self.http

    def _headers(self, row: Claimed, target: Target, body: bytes) -> dict[str, str]:
        # Standard Webhooks: the timestamp is wall time (receivers check it against theirs), even on
        # a virtual clock.
        stamp = int(time.time())
        headers = {"Content-Type": row.content_type, signing.ID_HEADER: row.uid,
                   signing.TIMESTAMP_HEADER: str(stamp)}
        if target.signing_secret:
            try:
                headers.update(signing.sign(target.signing_secret, row.uid, stamp, body))
            except ValueError:
                log.warning("unusable signing secret", extra={"domain_id": row.domain_id})
        return headers

    def _settle(self, row: Claimed, url: str, answer: Answer) -> None:
        at = self.clock.now()
        if answer.error in (OFF, LAPSED):
            # Switched off since the claim: the row waits (unleased) until the integration is back on. Or its
            # lease is (nearly) over: released, and claimed again by the next pass.
            self._settled.append(Settled(row, url, at, answer, retry.Outcome.RETRY, "skipped", None))
            self._settled_ready.set()
            return
        outcome = retry.Outcome.FINAL_FAILURE if answer.refused else retry.classify_outcome(answer.status,
                                                                                             answer.error)
        next_at = None
        if answer.retry_after is not None and row.url is None:
            asked = retry.parse_retry_after(answer.retry_after, at)
            if asked:
                self._not_before[row.domain_id] = at + min(asked, retry.RETRY_AFTER_CAP)
        if outcome is retry.Outcome.SUCCESS:
            state = "delivered"
        elif outcome is retry.Outcome.RETRY:
            next_at = retry.next_attempt_at(row.command, row.round_attempts + 1, row.created_at, at,
                                            answer.retry_after, self.rng, self.policy)
            state = "pending" if next_at is not None else "failed"
        else:
            state = "failed"
        _child(NOTIFY_ATTEMPTS, row.command, outcome.value).inc()
        _child(NOTIFY_LATENCY, row.command).observe(answer.latency)
        if state != "pending":
            _child(NOTIFY_FINISHED, row.command, state).inc()
        logs.delivery(outbox_id=row.id, domain_id=row.domain_id, command=row.command, attempt=row.attempts + 1,
                      url=url, status=answer.status, error=answer.error, seconds=answer.latency, state=state)
        self._settled.append(Settled(row, url, at, answer, outcome, state, next_at))
        self._settled_ready.set()

    # recording -----------------------------------------------------------------------------------

    async def _flusher(self) -> None:
        """Records outcomes as they come (batched while the previous pass runs) and claims more."""
        loop = asyncio.get_running_loop()
        while True:
            await self._settled_ready.wait()
            # Fewer, larger passes: a pass costs about the same for 5 outcomes as for 50 (its claim walks
            # the due rows either way), and a domain's claimed rows keep its requests busy meanwhile.
            deadline = loop.time() + COALESCE
            while (len(self._settled) < self.coalesce and len(self._settled) < len(self._inflight)
                   and not self._stopping and (left := deadline - loop.time()) > 0):
                self._settled_ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled_ready.wait(), left)
            self._settled_ready.clear()
            batch, self._settled = self._settled, []
            if not batch:
                continue
            try:
                await self.pump(batch)
            except asyncio.CancelledError:
                self._settled = batch + self._settled
                raise
            except Exception:
                log.exception("recording deliveries failed; retrying")
                self._settled = batch + self._settled
                await asyncio.sleep(0.5)
                self._settled_ready.set()

    async def _work(self, batch: list[Settled], now: datetime) -> repo.PassWork:
        """The pass's writes for ``batch``: row updates, delivery-log rows, releases and health transitions."""
        work = repo.PassWork(now)
        updates, attempts = work.updates, work.attempts
        await self._track_health(work, batch)
        for s in batch:
            r, a = s.row, s.answer
            if s.state == "skipped":
                work.released.append(r.id)
                continue
            if s.state == "pending" and retry.gives_up(r.command, r.created_at, s.at, self._health[r.domain_id][1],
                                                       self.policy):
                s.state, s.next_at = "failed", None
                NOTIFY_FINISHED.labels(r.command, "failed").inc()
            updates.append((r.id, s.state, r.attempts + 1, r.round_attempts + 1, s.next_at or s.at,
                            s.at if s.state == "delivered" else None, a.status, a.error))
            attempts.append((r.id, r.domain_id, r.attempts + 1, s.at, s.url[:2048], a.status, int(a.latency * 1000),
                             s.outcome.value, a.error, a.excerpt()))
        return work

    async def _track_health(self, work: repo.PassWork, batch: list[Settled]) -> None:
        """``keep`` (5 days) of failures with no success switch the integration off (only transitions are
        written); a success after a streak of at least ``probe_every`` ends the back-off of the CRM's pushes.
        Webhooks (a subscription's own URL) and expired events say nothing about the CRM."""
        unknown = {s.row.domain_id for s in batch if s.row.domain_id not in self._health}
        if unknown:
            async with self.runtime.sessions() as session:
                known = await repo.health(session, unknown)
            for d in unknown:
                h = known.get(d)
                self._health[d] = (h.first_failure_at, h.last_success_at) if h else (None, None)
        for s in batch:
            d = s.row.domain_id
            if s.state == "skipped" or s.row.url is not None or (s.answer.error or "").startswith(EXPIRED):
                continue
            first, last = self._health[d]
            if s.outcome is retry.Outcome.SUCCESS:
                if first is not None:
                    self._health[d] = work.health[d] = (None, s.at)
                    if s.at - first >= self.policy.probe_every and d not in work.recovered:
                        work.recovered.append(d)
                        log.info("CRM back: its pending pushes go now", extra={"domain_id": d})
                continue
            if first is None:
                self._health[d] = work.health[d] = (s.at, last)
                first = s.at
            self._arm_probe()  # also after a restart mid-outage (the streak read back from the store)
            if d not in work.switch_off and retry.should_switch_off(first, last, s.at, self.policy.keep):
                work.switch_off.append(d)
                self._health[d] = work.health[d] = (None, last)
                log.warning("CRM integration switched off after failing for %g days",
                            self.policy.keep.total_seconds() / 86400,
                            extra={"domain_id": d, "failing_since": first.isoformat()})

    def _after_health(self, work: repo.PassWork) -> None:
        for d in work.switch_off:
            self._targets.pop(d, None)
            self.runtime.auth.clear()
            NOTIFY_SWITCHED_OFF.inc()

    # introspection (tests, diagnostics) ------------------------------------------------------------

    @property
    def inflight(self) -> int:
        return len(self._inflight)
