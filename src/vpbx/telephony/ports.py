"""The port the rest of vpbx sees; simulated and (later) SIP telephony implement it.

The engine drives devices through ``Telephony`` (ring, stop, connect) and hears back through the
``CallSignals`` it attaches (a device answered, declined, hung up). It knows nothing else of them.
"""

from __future__ import annotations

from typing import Protocol


class CallSignals(Protocol):
    async def answered(self, callid: str, party: str) -> None:
        """``party``: an employee's login, or ``ext:<number>`` for an outside number the PBX called."""
        ...

    async def rejected(self, callid: str, party: str, reason: str | None = None) -> None:
        """``reason`` for an outside number the PBX called: ``busy``, ``unavailable`` or ``notfound``
        (002 §2.1 statuses Busy, NotAvailable, NotFound); None is a device that declined (busy)."""
        ...

    async def hung_up(self, callid: str, party: str) -> None: ...


class Telephony(Protocol):
    def is_registered(self, domain_id: int, login: str) -> bool:
        """Whether the employee has a device registered (002 §6.1 ``status`` online)."""
        ...

    def registered_of(self, domain_id: int, logins: list[str]) -> set[str]:
        """Which of ``logins`` are registered: ``is_registered`` for a department's whole roster at once."""
        ...

    def set_registered(self, domain_id: int, login: str, registered: bool) -> None: ...

    def trunk_status(self, domain_id: int, telnum: str) -> str:
        """Registration status of a SIP trunk to another operator (002 §15.1 ``status``)."""
        ...

    def set_trunk_status(self, domain_id: int, telnum: str, status: str) -> str:
        """Set it (the simulator, or the SIP stack); returns the previous status."""
        ...

    def attach(self, signals: CallSignals) -> None:
        """Where devices report answers, rejections and hang-ups."""
        ...

    def ring(self, domain_id: int, callid: str, party: str, caller: str, caller_name: str | None) -> None:
        """Start ringing ``party`` (a login, or ``ext:<number>``), showing the caller."""
        ...

    def stop(self, domain_id: int, callid: str, party: str) -> None:
        """The party's leg is over (ringing cancelled, or the call ended)."""
        ...

    def connected(self, domain_id: int, callid: str, party: str) -> None:
        """The party's leg is talking."""
        ...

    def moved(self, domain_id: int, old_callid: str, new_callid: str, party: str) -> None:
        """A transfer moved the party's (talking) leg to another call; it keeps talking."""
        ...
