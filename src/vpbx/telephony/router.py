"""Simulated and SIP telephony side by side, as one ``Telephony`` port.

An employee with a live SIP registration rings on SIP; one without rings in the simulator (when the simulator
registered them). Outside numbers of a call that came from the SIP network go out through the carrier;
those of simulated calls stay simulated. ``is_registered`` is true when either side has the employee.

It IS the simulator (a subclass): the simulator API, the demo's phones and the traffic generator address
``runtime.telephony`` as ``SimTelephony``, and keep working unchanged when SIP is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpbx.telephony.sim import SimTelephony

if TYPE_CHECKING:
    from vpbx.clock import RealClock, VirtualClock
    from vpbx.engine.model import Call
    from vpbx.telephony.ports import CallSignals
    from vpbx.telephony.sip.port import SipTelephony


class Router(SimTelephony):
    def __init__(self, sip: SipTelephony) -> None:
        super().__init__()
        self.sip = sip
        self._on_sip: dict[str, set[str]] = {}  # callid -> its parties rung on SIP (by call: a call's end is O(1))

    def _sip_has(self, callid: str, party: str) -> bool:
        return party in self._on_sip.get(callid, ())

    def _sip_drop(self, callid: str, party: str) -> None:
        parties = self._on_sip.get(callid)
        if parties is not None:
            parties.discard(party)
            if not parties:
                del self._on_sip[callid]

    def attach(self, signals: CallSignals, clock: RealClock | VirtualClock | None = None) -> None:
        super().attach(signals, clock)
        self.sip.attach(signals, clock)

    def is_registered(self, domain_id: int, login: str) -> bool:
        return self.sip.is_registered(domain_id, login) or super().is_registered(domain_id, login)

    def registered_of(self, domain_id: int, logins: list[str]) -> set[str]:
        return self.sip.location.registered_of(domain_id, logins) | super().registered_of(domain_id, logins)

    def _sip_takes(self, domain_id: int, callid: str, party: str) -> bool:
        if party.startswith("ext:"):
            return self.sip.can_dial_out(callid)
        return self.sip.is_registered(domain_id, party)

    def ring(self, domain_id: int, callid: str, party: str, caller: str, caller_name: str | None) -> None:
        if self._sip_takes(domain_id, callid, party):
            self._on_sip.setdefault(callid, set()).add(party)
            self.sip.ring(domain_id, callid, party, caller, caller_name)
        else:
            super().ring(domain_id, callid, party, caller, caller_name)

    def stop(self, domain_id: int, callid: str, party: str) -> None:
        if self._sip_has(callid, party):
            self._sip_drop(callid, party)
            self.sip.stop(domain_id, callid, party)
        else:
            super().stop(domain_id, callid, party)

    def connected(self, domain_id: int, callid: str, party: str) -> None:
        if self._sip_has(callid, party):
            self.sip.connected(domain_id, callid, party)
        else:
            super().connected(domain_id, callid, party)
            if self.sip.has_leg(callid):  # a SIP caller answered by a simulated device
                self.sip.connected_to_simulator(callid)

    def moved(self, domain_id: int, old_callid: str, new_callid: str, party: str) -> None:
        if self._sip_has(old_callid, party):
            self._sip_drop(old_callid, party)
            self._on_sip.setdefault(new_callid, set()).add(party)
            self.sip.moved(domain_id, old_callid, new_callid, party)
        else:
            super().moved(domain_id, old_callid, new_callid, party)

    def prompt(self, domain_id: int, callid: str, prompt: str, file: str | None) -> None:
        """A call from the SIP network hears it (rtpengine); a simulated call has no audio."""
        if self.sip.has_leg(callid):
            self.sip.prompt(domain_id, callid, prompt, file)

    def call_ended(self, call: Call) -> None:
        self._on_sip.pop(call.callid, None)
        self.sip.call_ended(call)
