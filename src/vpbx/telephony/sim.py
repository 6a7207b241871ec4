"""Simulated phones and outside numbers.

Devices start unregistered (offline) until the simulator registers them. A device or an outside
number may behave automatically when rung: answer, reject (busy) or ignore after ``after`` seconds,
then hang up after ``talk`` seconds. Timers run on the one clock, so the virtual clock drives them.

Outside numbers not set one by one follow their domain's default, ``DEFAULT_EXTERNAL`` until the simulator
sets another (``PUT /sim/v1/externals``): answer after 3 s and hang up after 30 s of conversation, so a call
to a client never talks forever unattended.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpbx.clock import RealClock, Timer, VirtualClock
    from vpbx.telephony.ports import CallSignals

log = logging.getLogger("vpbx.telephony.sim")

DEVICE_ACTIONS = ("answer", "reject", "ignore")
EXTERNAL_ACTIONS = ("answer", "busy", "unavailable", "notfound", "ignore")


@dataclass(frozen=True)
class Auto:
    action: str = "ignore"
    after: float = 0.0
    talk: float | None = None
    share: float = 1.0  # the share of rings the action is taken on; the others are let ring (a person away)


DEFAULT_EXTERNAL = Auto("answer", 3.0, 30.0)  # design/simulator.md: "answer after 3 s, talk 30 s"


class SimTelephony:
    def __init__(self) -> None:
        self._registered: set[tuple[int, str]] = set()
        self._trunks: dict[tuple[int, str], str] = {}  # SIP registrations (§15): absent means success
        self._auto: dict[tuple[int, str], Auto] = {}
        self._externals: dict[tuple[int, str], Auto] = {}
        self._external_defaults: dict[int, Auto] = {}
        self._timers: dict[tuple[str, str], Timer] = {}
        # The behaviour a party had when it started ringing: it answers AND hangs up by that one, even if the
        # simulator changes the device's behaviour in between (a call would otherwise talk forever).
        self._rung: dict[tuple[str, str], Auto] = {}
        self._signals: CallSignals | None = None
        self.rng = random.Random()  # draws ``Auto.share``; tests seed it
        self.clock: RealClock | VirtualClock | None = None

    # --- configuration (the simulator API) ------------------------------------------------------

    def is_registered(self, domain_id: int, login: str) -> bool:
        return (domain_id, login) in self._registered

    def registered_of(self, domain_id: int, logins: list[str]) -> set[str]:
        """Which of ``logins`` have a device registered (one question for a department's whole roster)."""
        return {login for login in logins if (domain_id, login) in self._registered}

    def set_registered(self, domain_id: int, login: str, registered: bool) -> None:
        if registered:
            self._registered.add((domain_id, login))
        else:
            self._registered.discard((domain_id, login))

    def trunk_status(self, domain_id: int, telnum: str) -> str:
        return self._trunks.get((domain_id, telnum), "success")

    def set_trunk_status(self, domain_id: int, telnum: str, status: str) -> str:
        previous = self.trunk_status(domain_id, telnum)
        if status == "success":
            self._trunks.pop((domain_id, telnum), None)
        else:
            self._trunks[(domain_id, telnum)] = status
        return previous

    def set_auto(self, domain_id: int, login: str, auto: Auto | None) -> None:
        if auto is None:
            self._auto.pop((domain_id, login), None)
        else:
            self._auto[(domain_id, login)] = auto

    def auto_of(self, domain_id: int, login: str) -> Auto | None:
        return self._auto.get((domain_id, login))

    def set_external(self, domain_id: int, phone: str, auto: Auto | None) -> None:
        """Set how ``phone`` behaves; ``None``: it follows the domain's default again."""
        if auto is None:
            self._externals.pop((domain_id, phone), None)
        else:
            self._externals[(domain_id, phone)] = auto

    def external_set(self, domain_id: int, phone: str) -> Auto | None:
        """The behaviour set for ``phone`` itself (``None``: it follows the default)."""
        return self._externals.get((domain_id, phone))

    def external_of(self, domain_id: int, phone: str) -> Auto:
        return self._externals.get((domain_id, phone)) or self.external_default(domain_id)

    def externals(self, domain_id: int) -> dict[str, Auto]:
        """The outside numbers set one by one."""
        return {phone: auto for (d, phone), auto in self._externals.items() if d == domain_id}

    def external_default(self, domain_id: int) -> Auto:
        return self._external_defaults.get(domain_id, DEFAULT_EXTERNAL)

    def set_external_default(self, domain_id: int, auto: Auto | None) -> None:
        """How every outside number not set one by one behaves; ``None``: back to ``DEFAULT_EXTERNAL``."""
        if auto is None:
            self._external_defaults.pop(domain_id, None)
        else:
            self._external_defaults[domain_id] = auto

    def holds(self, domain_id: int) -> bool:
        """Whether the simulator was told anything about the domain (devices, behaviours, outside numbers). It lives
        in this process only, so a cluster keeps such a domain where it is rather than move it to balance."""
        return (domain_id in self._external_defaults
                or any(d == domain_id for d, _ in self._registered)
                or any(d == domain_id for d, _ in self._auto)
                or any(d == domain_id for d, _ in self._externals))

    # --- the port -------------------------------------------------------------------------------

    def attach(self, signals: CallSignals, clock: RealClock | VirtualClock | None = None) -> None:
        self._signals = signals
        if clock is not None:
            self.clock = clock

    def _behaviour(self, domain_id: int, party: str) -> Auto | None:
        if party.startswith("ext:"):
            return self.external_of(domain_id, party[4:])
        return self._auto.get((domain_id, party))

    def _schedule(self, callid: str, party: str, delay: float, what: str) -> None:
        if self.clock is None or self._signals is None:
            return
        signals = self._signals

        async def fire() -> None:
            from vpbx.engine.core import CallError

            self._timers.pop((callid, party), None)
            try:
                if what == "answer":
                    await signals.answered(callid, party)
                elif what == "reject":
                    await signals.rejected(callid, party)
                elif what in ("busy", "unavailable", "notfound"):
                    await signals.rejected(callid, party, what)
                else:
                    await signals.hung_up(callid, party)
            except CallError as exc:  # the call ended or moved on first (a phone answering a call that is over)
                log.info("simulated %s of %s on call %s came too late: %s", what, party, callid, exc.message)

        self._cancel(callid, party)
        self._timers[(callid, party)] = self.clock.call_later(delay, fire)

    def _cancel(self, callid: str, party: str) -> None:
        timer = self._timers.pop((callid, party), None)
        if timer is not None:
            timer.cancel()

    def ring(self, domain_id: int, callid: str, party: str, caller: str, caller_name: str | None) -> None:
        auto = self._behaviour(domain_id, party)
        if auto is None or auto.action == "ignore" or (auto.share < 1.0 and self.rng.random() >= auto.share):
            return
        self._rung[(callid, party)] = auto
        what = auto.action  # answer, reject (a device), or busy / unavailable / notfound (an outside number)
        self._schedule(callid, party, auto.after, what)

    def stop(self, domain_id: int, callid: str, party: str) -> None:
        self._cancel(callid, party)
        self._rung.pop((callid, party), None)

    def moved(self, domain_id: int, old_callid: str, new_callid: str, party: str) -> None:
        """Keep the party's pending automatic action (its hang-up after ``talk``), now on the new call."""
        timer = self._timers.pop((old_callid, party), None)
        if timer is None or self.clock is None:
            return
        remaining = max(0.0, (timer.due - self.clock.now()).total_seconds())
        timer.cancel()
        self._schedule(new_callid, party, remaining, "hangup")

    def connected(self, domain_id: int, callid: str, party: str) -> None:
        auto = self._rung.pop((callid, party), None) or self._behaviour(domain_id, party)
        if auto is not None and auto.talk is not None:
            self._schedule(callid, party, auto.talk, "hangup")
