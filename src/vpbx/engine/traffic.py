"""Generated traffic (simulator.md ``POST /sim/v1/traffic``): random clients calling the domain's numbers.

Arrivals are a Poisson process: exponential gaps with mean ``60 / calls_per_minute`` seconds, drawn from a
``random.Random`` seeded by the run's seed, so the same seed and configuration give the same calls with the
same outcomes on the virtual clock (the engine is deterministic there: every timer runs in order). Each arrival
is a client from a pool of valid Russian mobile numbers dialling one of the numbers through
``CallEngine.incoming`` (or, with ``outgoing_share``, an employee who is not on a call dialling a client through
``CallEngine.outgoing``). For the run, the employees' devices are registered and answer automatically: before
every arrival each device draws whether it answers (``answer_probability``), after how long (``answer_after``)
and how long it talks (``talk``); the simulated telephony applies the draw when the device rings. Every timer
is the runtime clock's ``call_later``: on the virtual clock the run moves with ``/sim/v1/clock/advance``, on the
real clock in real time.

When ``duration_s`` has passed no more calls are placed; the run waits for its calls to end (at most
``DRAIN_LIMIT`` seconds), then it is ``done`` and every device (and outside number) it touched gets back what it
had. ``stop`` ends a run at once (``stopped``): nothing more is placed, the devices get their behaviour back,
and the calls still up finish by the PBX's rules.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from vpbx.clock import Timer
from vpbx.domain.history import iso
from vpbx.engine.core import CallEngine, CallError
from vpbx.engine.model import Call
from vpbx.notify.payloads import CallStatus
from vpbx.runtime import Runtime
from vpbx.services.errors import Invalid
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.store.tables import Domain
from vpbx.telephony.sim import Auto, SimTelephony

__all__ = ["TrafficConfig", "TrafficRun", "arrivals", "client_numbers", "run_of", "start", "stop_all"]

log = logging.getLogger("vpbx.traffic")

KEY = "traffic"
DRAIN_LIMIT = 300.0  # seconds after the last arrival a run waits for its calls to end
TICK = 1.0  # how often a draining run looks at its calls
MAX_LOG = 10_000  # calls listed by ``status(calls=True)``: the first ones of the run
ENDED = ("ended", "refused")


@dataclass(frozen=True)
class TrafficConfig:
    """What a run does; ``numbers`` and ``users`` empty mean all the domain's enabled numbers and employees."""

    calls_per_minute: float
    duration_s: float
    seed: int
    numbers: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    answer_probability: float = 0.9
    answer_after: tuple[float, float] = (2.0, 8.0)
    talk: tuple[float, float] = (20.0, 180.0)
    patience: tuple[float, float] | None = None  # the client hangs up unanswered after this long (None: never)
    outgoing_share: float = 0.0
    clients: int = 200

    def out(self) -> dict[str, Any]:
        return {"calls_per_minute": self.calls_per_minute, "duration_s": self.duration_s, "seed": self.seed,
                "numbers": list(self.numbers), "users": list(self.users),
                "answer_probability": self.answer_probability, "answer_after": list(self.answer_after),
                "talk": list(self.talk), "patience": list(self.patience) if self.patience else None,
                "outgoing_share": self.outgoing_share, "clients": self.clients}


def arrivals(calls_per_minute: float, duration_s: float, rng: random.Random) -> Iterator[float]:
    """Offsets (seconds from the start) of a Poisson process of rate ``calls_per_minute``, below ``duration_s``."""
    rate = calls_per_minute / 60.0
    if not rate > 0.0:  # a positive rate so small that it rounds to zero (5e-324/min): no call ever arrives
        return
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= duration_s:
            return
        yield t


def client_numbers(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct valid Russian mobile numbers (7 9XX XXX-XX-XX), in draw order."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        number = f"79{rng.randrange(10**9):09d}"
        if number not in seen:
            seen.add(number)
            out.append(number)
    return out


@dataclass
class _Placed:
    at: float  # seconds from the start of the run
    kind: str
    from_: str
    to: str
    call: Call | None  # None: the engine refused to place it (an error), or it ended (``ended`` holds it)
    ended: dict[str, Any] | None = None  # the ended call's summary: a run's log never holds ended calls

    def out(self) -> dict[str, Any]:
        head = {"at": round(self.at, 3), "kind": self.kind, "from": self.from_, "to": self.to}
        if self.ended is not None:
            return head | self.ended
        call = self.call
        return head | {"callid": call.callid if call else None, "state": call.state if call else "error",
                       "status": call.status if call else None, "answered_by": call.answered_by if call else None}

    def freeze(self) -> None:
        """The call ended: keep what ``out`` shows and let the call go (a long run's log stays small)."""
        call = self.call
        if call is not None:
            self.ended = {"callid": call.callid, "state": call.state, "status": call.status,
                          "answered_by": call.answered_by}
            self.call = None


@dataclass
class TrafficRun:
    runtime: Runtime
    engine: CallEngine
    sim: SimTelephony
    domain: Domain
    config: TrafficConfig
    started_at: datetime
    state: str = "running"  # running | done | stopped
    placing: bool = True
    ended_at: datetime | None = None
    placed: int = 0
    answered: int = 0
    missed: int = 0
    refused: int = 0
    outgoing: int = 0
    errors: int = 0
    _live: list[tuple[Call, _Placed | None]] = field(default_factory=list)  # with its log line, if logged
    _log: list[_Placed] = field(default_factory=list)
    _saved_devices: dict[str, tuple[bool, Auto | None]] = field(default_factory=dict)
    _saved_externals: dict[str, Auto | None] = field(default_factory=dict)  # None: followed the default
    _timer: Timer | None = None
    _arrivals: Iterator[float] | None = None
    _pick: random.Random = field(default_factory=random.Random)
    _behave: random.Random = field(default_factory=random.Random)
    _clients: list[str] = field(default_factory=list)

    # --- lifecycle -------------------------------------------------------------------------------

    def begin(self) -> None:
        seed = self.config.seed
        # Separate streams: the arrival times do not depend on how many draws the calls' behaviour took.
        self._arrivals = arrivals(self.config.calls_per_minute, self.config.duration_s,
                                  random.Random(f"{seed}:arrivals"))
        self._pick = random.Random(f"{seed}:calls")
        self._behave = random.Random(f"{seed}:behaviour")
        self._clients = client_numbers(random.Random(f"{seed}:clients"), self.config.clients)
        d = self.domain.id
        for login in self.config.users:
            self._saved_devices[login] = (self.sim.is_registered(d, login), self.sim.auto_of(d, login))
            self.sim.set_registered(d, login, True)
        self._roll_devices()
        self._schedule_next()

    def _elapsed(self) -> float:
        return (self.runtime.clock.now() - self.started_at).total_seconds()

    def _schedule_next(self) -> None:
        assert self._arrivals is not None
        at = next(self._arrivals, None)
        if at is None:
            self.placing = False
            self._timer = self.runtime.clock.call_later(max(0.0, self.config.duration_s - self._elapsed()),
                                                        self._drain)
            return
        self._timer = self.runtime.clock.call_later(max(0.0, at - self._elapsed()), lambda: self._arrive(at))

    async def _arrive(self, at: float) -> None:
        if self.state != "running" or not self.placing:
            return
        self._schedule_next()  # first: a slow placement does not delay the next arrival
        self._sweep()
        self._roll_devices()
        share = self.config.outgoing_share
        # Who is free matters only to a run with outgoing calls (built for every arrival, it was a hot loop).
        free = [u for u in self.config.users if (self.domain.id, u) not in self.engine.busy] if share > 0 else []
        outgoing = share > 0 and self._pick.random() < share and bool(free)
        client = self._clients[self._pick.randrange(len(self._clients))]
        if outgoing:
            who = free[self._pick.randrange(len(free))]
            self._roll_external(client)
            placed = _Placed(at, "outgoing", who, client, None)
            call = await self._place(placed, self.engine.outgoing(self.domain, who, client))
        else:
            number = self.config.numbers[self._pick.randrange(len(self.config.numbers))]
            placed = _Placed(at, "incoming", client, number, None)
            call = await self._place(placed, self.engine.incoming(self.domain, client, number))
            if call is not None and self.config.patience is not None and call.state not in ENDED:
                wait = round(self._behave.uniform(*self.config.patience), 1)
                self.runtime.clock.call_later(wait, lambda: self._give_up(call))

    async def _place(self, placed: _Placed, coro: Awaitable[Call]) -> Call | None:
        try:
            call: Call | None = await coro
        except Exception as exc:  # the engine refused (CallError) or failed: count it, keep the run going
            if not isinstance(exc, CallError):
                log.exception("traffic: placing a call failed")
            self.errors += 1
            self.missed += 1
            call = None
        # Counted once placed (a contact lookup may take seconds): placed = answered + missed + live at any time.
        self.placed += 1
        if placed.kind == "outgoing":
            self.outgoing += 1
        placed.call = call
        logged = len(self._log) < MAX_LOG
        if logged:
            self._log.append(placed)
        if call is not None:
            self._live.append((call, placed if logged else None))
        return call

    async def _give_up(self, call: Call) -> None:
        """The client's patience ran out before anyone answered: they hang up."""
        if call.state in ENDED or call.answered_at is not None or call.state in ("talking", "rating"):
            return
        try:
            await self.engine.hung_up(call.callid, "client")
        except CallError:
            pass

    async def _drain(self) -> None:
        """After the last arrival: wait for the run's calls to end, then give the devices back."""
        if self.state != "running":
            return
        self.placing = False
        self._sweep()
        if not self._live or self._elapsed() >= self.config.duration_s + DRAIN_LIMIT:
            self._finish("done")
            return
        self._timer = self.runtime.clock.call_later(TICK, self._drain)

    def stop(self) -> None:
        """Stop placing calls now; the calls up finish by the PBX's rules."""
        if self.state == "running":
            self._finish("stopped")

    def _finish(self, state: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state, self.placing, self.ended_at = state, False, self.runtime.clock.now()
        d = self.domain.id
        for login, (registered, auto) in self._saved_devices.items():
            self.sim.set_registered(d, login, registered)
            self.sim.set_auto(d, login, auto)
        for phone, behaviour in self._saved_externals.items():
            self.sim.set_external(d, phone, behaviour)
        self._sweep()

    # --- behaviour -------------------------------------------------------------------------------

    def _draw(self) -> tuple[bool, float, float]:
        rng, c = self._behave, self.config
        answers = rng.random() < c.answer_probability
        return answers, round(rng.uniform(*c.answer_after), 1), round(rng.uniform(*c.talk), 1)

    def _roll_devices(self) -> None:
        """Each device's next behaviour when rung: answer after a few seconds and talk a while, or let it ring."""
        for login in self.config.users:
            answers, after, talk = self._draw()
            self.sim.set_auto(self.domain.id, login, Auto("answer" if answers else "ignore", after, talk))

    def _roll_external(self, phone: str) -> None:
        """How the client answers an employee's call: picks up and talks, or is busy."""
        if phone not in self._saved_externals:
            self._saved_externals[phone] = self.sim.external_set(self.domain.id, phone)
        answers, after, talk = self._draw()
        # ``talk`` also when busy: the phone's behaviour is read again when it connects, and an earlier call to
        # the same client may still be ringing it.
        self.sim.set_external(self.domain.id, phone, Auto("answer" if answers else "busy", after, talk))

    # --- progress --------------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Count the calls that ended since the last look."""
        still: list[tuple[Call, _Placed | None]] = []
        for call, placed in self._live:
            if call.state not in ENDED:
                still.append((call, placed))
                continue
            if placed is not None:
                placed.freeze()
            if call.state == "refused":
                self.refused += 1
                self.missed += 1
            elif call.status == CallStatus.SUCCESS.value:
                self.answered += 1
            else:
                self.missed += 1
        self._live = still

    def status(self, *, calls: bool = False) -> dict[str, Any]:
        self._sweep()
        end = self.ended_at or self.runtime.clock.now()
        out: dict[str, Any] = {
            "state": self.state, "placing": self.placing, "seed": self.config.seed,
            "started": iso(self.started_at), "ended": iso(self.ended_at) if self.ended_at else None,
            "elapsed_s": round((end - self.started_at).total_seconds(), 3), "duration_s": self.config.duration_s,
            "placed": self.placed, "answered": self.answered, "missed": self.missed, "live": len(self._live),
            "refused": self.refused, "outgoing": self.outgoing, "errors": self.errors, "config": self.config.out(),
        }
        if calls:
            out["calls"] = [p.out() for p in self._log]
            out["calls_truncated"] = self.placed > len(self._log)
        return out


# --- the runs of a server -----------------------------------------------------------------------


def _runs(runtime: Runtime) -> dict[int, TrafficRun]:
    runs = runtime.extras.get(KEY)
    if not isinstance(runs, dict):
        runs = {}
        runtime.extras[KEY] = runs
    return cast(dict[int, TrafficRun], runs)


def run_of(runtime: Runtime, domain_id: int) -> TrafficRun | None:
    """The domain's current or last run."""
    return _runs(runtime).get(domain_id)


async def _resolve(runtime: Runtime, domain: Domain, numbers: list[str] | None,
                   users: list[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from vpbx.domain.phone import InvalidNumber, normalize_number

    async with runtime.sessions() as session:
        rows = await numbers_repo.all_telnums(session, domain.id)
        enabled = [t.telnum for t in rows if t.kind == "number" and not t.disabled]
        if numbers is None:
            if not enabled:
                raise Invalid("numbers", "the domain has no enabled number to call")
            chosen = enabled
        else:
            chosen = []
            for i, raw in enumerate(numbers):
                try:
                    number = normalize_number(raw)
                except InvalidNumber:
                    raise Invalid(f"numbers.{i}", "not a phone number") from None
                if number not in enabled:
                    raise Invalid(f"numbers.{i}", f"{number} is not an enabled number of the domain")
                chosen.append(number)
        if users is None:
            rows_u, _ = await repo.list_users(runtime.reader, domain.id, Page())
            logins = [r.login for r in rows_u]
        else:
            logins = []
            for i, who in enumerate(users):
                user = await repo.find_user(session, domain.id, who)
                if user is None:
                    raise Invalid(f"users.{i}", f"no employee '{who}'")
                logins.append(user.login)
    return tuple(dict.fromkeys(chosen)), tuple(sorted(set(logins)))


async def start(runtime: Runtime, engine: CallEngine, domain: Domain, config: TrafficConfig, *,
                numbers: list[str] | None = None, users: list[str] | None = None) -> TrafficRun:
    """Start a run on ``domain`` (409 ``CallError`` while another one runs there); bad input raises ``Invalid``."""
    if not isinstance(runtime.telephony, SimTelephony):
        raise CallError(409, "Generated traffic needs simulated telephony")
    current = run_of(runtime, domain.id)
    if current is not None and current.state == "running":
        raise CallError(409, "A traffic run is already running on this domain")
    chosen, logins = await _resolve(runtime, domain, numbers, users)
    config = dataclasses.replace(config, numbers=chosen, users=logins)
    run = TrafficRun(runtime=runtime, engine=engine, sim=runtime.telephony, domain=domain, config=config,
                     started_at=runtime.clock.now())
    current = run_of(runtime, domain.id)  # resolving awaited: another request may have started one
    if current is not None and current.state == "running":
        raise CallError(409, "A traffic run is already running on this domain")
    _runs(runtime)[domain.id] = run
    run.begin()
    return run


async def stop_all(runtime: Runtime) -> None:
    """Server shutdown: stop every run (before the engine stops)."""
    for run in list(_runs(runtime).values()):
        run.stop()
