"""Simulated phones. Devices start unregistered (offline) until the simulator registers them."""

from __future__ import annotations


class SimTelephony:
    def __init__(self) -> None:
        self._registered: set[tuple[int, str]] = set()

    def is_registered(self, domain_id: int, login: str) -> bool:
        return (domain_id, login) in self._registered

    def set_registered(self, domain_id: int, login: str, registered: bool) -> None:
        if registered:
            self._registered.add((domain_id, login))
        else:
            self._registered.discard((domain_id, login))
