"""The port the rest of vpbx sees; simulated and (later) SIP telephony implement it."""

from __future__ import annotations

from typing import Protocol


class Telephony(Protocol):
    def is_registered(self, domain_id: int, login: str) -> bool:
        """Whether the employee has a device registered (002 §6.1 ``status`` online)."""
        ...

    def set_registered(self, domain_id: int, login: str, registered: bool) -> None: ...
