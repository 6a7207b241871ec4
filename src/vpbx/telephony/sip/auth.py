"""Digest authentication of phones (RFC 2617/3261 with sippy's nonces) and a fail2ban-like guard.

Employees' credentials are stored as HA1 per realm (the domain's name), never in clear
(``vpbx.store.repositories.sip``). A source address failing ``limit`` times within a minute is blocked for
``block_seconds``: every request from it is refused until then. Time comes from the one clock.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from vpbx.store.repositories import sip as sip_repo

if TYPE_CHECKING:
    from vpbx.clock import RealClock, VirtualClock
    from vpbx.runtime import Runtime

log = logging.getLogger("vpbx.sip.auth")

WINDOW = timedelta(minutes=1)


class FailGuard:
    """Authentication failures per source host, and the hosts blocked for failing too often."""

    def __init__(self, clock: RealClock | VirtualClock, limit: int, block_seconds: float) -> None:
        self.clock, self.limit, self.block = clock, limit, timedelta(seconds=block_seconds)
        self._fails: dict[str, deque[datetime]] = {}
        self._blocked: dict[str, datetime] = {}

    def blocked(self, host: str) -> bool:
        until = self._blocked.get(host)
        if until is None:
            return False
        if self.clock.now() >= until:
            del self._blocked[host]
            return False
        return True

    def failed(self, host: str) -> None:
        now = self.clock.now()
        fails = self._fails.setdefault(host, deque())
        fails.append(now)
        while fails and now - fails[0] > WINDOW:
            fails.popleft()
        if len(fails) >= self.limit:
            self._blocked[host] = now + self.block
            self._fails.pop(host, None)
            log.warning("SIP source blocked", extra={"source": host, "failures": self.limit,
                                                     "seconds": self.block.total_seconds()})

    def succeeded(self, host: str) -> None:
        self._fails.pop(host, None)

    def clear(self) -> None:
        """Forget every failure and block (the operator's reset; tests sharing 127.0.0.1)."""
        self._fails.clear()
        self._blocked.clear()


class Verdict(Enum):
    OK = "ok"
    CHALLENGE = "challenge"  # no credentials, or a stale nonce: 401 with a fresh challenge
    FORBIDDEN = "forbidden"  # wrong user or password: 403


@dataclass(frozen=True)
class AuthResult:
    verdict: Verdict
    account: sip_repo.SipAccount | None = None


def challenge_header(realm: str) -> Any:
    """A ``WWW-Authenticate`` header with a fresh nonce (sippy's HashOracle: signed, time-limited)."""
    from sippy.SipHeader import SipHeader
    from sippy.SipWWWAuthenticate import SipWWWAuthenticate

    return SipHeader(body=SipWWWAuthenticate(realm=realm))


def authorization_of(req: Any) -> Any | None:
    """The request's ``Authorization`` body (parsed), or None."""
    if req.countHFs("authorization") == 0:
        return None
    auth = req.getHFBody("authorization")
    if not auth.parsed:
        auth.parse()
    return auth


async def check(runtime: Runtime, auth: Any | None, realm: str, method: str) -> AuthResult:
    """Check a request's digest credentials against the employee's stored HA1 for ``realm``."""
    if auth is None:
        return AuthResult(Verdict.CHALLENGE)
    if not auth.parsed:
        auth.parse()
    from sippy.SipAuthorization import NameList2AlgMask

    username, given_realm = auth.username or "", auth.realm or ""
    try:
        fresh = auth.ho.validate_challenge(auth.nonce or "", NameList2AlgMask((auth.algorithm,)))
    except Exception:  # an algorithm sippy does not know, a mangled nonce
        fresh = False
    if not fresh:
        return AuthResult(Verdict.CHALLENGE)
    if given_realm != realm or not username:
        return AuthResult(Verdict.FORBIDDEN)
    async with runtime.sessions() as session:
        account = await sip_repo.find_account(session, realm, username)
    if account is None:
        return AuthResult(Verdict.FORBIDDEN)
    try:
        ok = bool(auth.verifyHA1(account.ha1.encode(), method, None))
    except Exception:
        ok = False
    return AuthResult(Verdict.OK, account) if ok else AuthResult(Verdict.FORBIDDEN)
