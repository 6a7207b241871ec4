"""The pytest plugin of the CRM developer's kit (entry point ``vpbx``; loaded once vpbx is installed).

Fixtures (all prefixed, so they never clash with a project's own):

- ``vpbx_server``: a real vpbx on a free loopback port, a fresh store (SQLite in a temporary
  directory, or ``--vpbx-db URL``) and the virtual clock; one per session.
- ``vpbx_domain``: a fresh domain with the demo company (10 employees, 3 departments, the number
  74951234567), every employee's phone registered; known ``api_key``, ``legacy_token`` and
  ``crm_token``; ``vpbx_domain.client`` is a ``vpbx.client.Client``; ``vpbx_domain.set_crm(url)``
  points its CRM integration at your receiver.
- ``vpbx_sim``: the simulator over ``/sim/v1``: ``place``, ``answer``, ``reject``, ``hangup``,
  ``transfer``, ``dtmf``, ``advance``.
- ``crm_receiver``: a loopback CRM built on ``vpbx.crm.Receiver`` that records every request, already
  connected to ``vpbx_domain``; register answers with ``crm_receiver.receiver.on_contact``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from vpbx.client import Client
    from vpbx.crm import Answer, ParsedRequest, Receiver
    from vpbx.notify.payloads import Notice
    from vpbx.testing.server import ServerThread

DEMO_NUMBER = "74951234567"
DEMO_LOGINS = ("admin", "user1", "director", "manager", "ivan", "maria", "sergey", "anna", "elena", "dmitry")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpbx", "vpbx: a PBX to test a CRM against")
    group.addoption("--vpbx-db", default=os.environ.get("VPBX_PLUGIN_DB", ""),
                    help="SQLAlchemy URL of the vpbx_server's store (default: SQLite in a temporary directory; "
                         "env VPBX_PLUGIN_DB)")


# --- the server ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def vpbx_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    from vpbx.settings import Settings
    from vpbx.testing.server import ServerThread

    tmp = tmp_path_factory.mktemp("vpbx-server")
    db = request.config.getoption("--vpbx-db") or f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    server = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual",
                                   allow_private_crm=True)).start()
    yield server
    server.stop()


# --- a domain ------------------------------------------------------------------------------------

@dataclass
class VpbxDomain:
    server: ServerThread
    name: str
    api_key: str
    legacy_token: str
    crm_token: str
    client: Client
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def set_crm(self, url: str, *, token: str | None = None, dialect: str = "form", enabled: bool = True,
                signing_secret: str | None = None, lookup_timeout: float | None = None) -> None:
        """Point the domain's CRM integration at ``url`` (``token`` defaults to ``crm_token``)."""
        from vpbx.services import tenancy

        if token is not None:
            self.crm_token = token

        async def work() -> None:
            async with self.server.runtime.sessions() as session:
                domain = await tenancy.get_domain(session, self.name)
                await tenancy.set_integration(session, domain, crm_url=url, crm_token=self.crm_token,
                                              dialect=dialect, enabled=enabled,
                                              signing_secret="" if signing_secret is None else signing_secret,
                                              lookup_timeout=lookup_timeout)
                await session.commit()

        self.server.call(work())

    def register(self, *logins: str, registered: bool = True) -> None:
        """Register (or unregister) employees' phones; without logins, every demo employee's."""
        for login in logins or DEMO_LOGINS:
            response = self.http.put(f"/sim/v1/devices/{login}", json={"registered": registered})
            response.raise_for_status()


@pytest.fixture
def vpbx_domain(vpbx_server: ServerThread) -> Iterator[VpbxDomain]:
    from vpbx.client import Client
    from vpbx.testing.server import create_tenant

    tenant = create_tenant(vpbx_server)
    domain = VpbxDomain(vpbx_server, tenant.name, tenant.api_key, tenant.legacy_token,
                        f"crm-{uuid.uuid4().hex[:16]}",
                        Client(vpbx_server.url, tenant.api_key, legacy_token=tenant.legacy_token), tenant.client)
    domain.register()
    yield domain
    domain.client.close()
    tenant.client.close()


# --- the simulator -------------------------------------------------------------------------------

class VpbxSim:
    """The simulator of ``/sim/v1`` (design/simulator.md); each call answers the call's view (a dict)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _ok(self, response: httpx.Response) -> Any:
        from vpbx.client._base import decode, raise_for

        raise_for(response)
        return decode(response)

    def place(self, frm: str, to: str = DEMO_NUMBER) -> dict[str, Any]:
        """A client (``79101234567``, ``anonymous``) dials a domain number, or ``user:andy`` dials ``user:702``."""
        return dict(self._ok(self.http.post("/sim/v1/calls", json={"from": frm, "to": to})))

    def call(self, callid: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/sim/v1/calls/{callid}")))

    def calls(self) -> list[dict[str, Any]]:
        return list(self._ok(self.http.get("/sim/v1/calls")))

    def _act(self, callid: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._ok(self.http.post(f"/sim/v1/calls/{callid}/{action}", json=dict(body))))

    def answer(self, callid: str, user: str) -> dict[str, Any]:
        return self._act(callid, "answer", {"user": user})

    def reject(self, callid: str, user: str) -> dict[str, Any]:
        return self._act(callid, "reject", {"user": user})

    def hangup(self, callid: str, by: str = "client") -> dict[str, Any]:
        return self._act(callid, "hangup", {"by": by})

    def dtmf(self, callid: str, digits: str) -> dict[str, Any]:
        return self._act(callid, "dtmf", {"digits": digits})

    def transfer(self, callid: str, user: str, to: str) -> dict[str, Any]:
        return self._act(callid, "transfer", {"user": user, "to": to, "mode": "blind"})

    def ringing(self, callid: str) -> list[str]:
        """Who rings on the call now: employees' logins (also for their mobile legs), ``ext:<number>`` for
        outside numbers."""
        legs = self.call(callid).get("legs") or []
        return [leg.get("owner") or leg["party"] for leg in legs if leg.get("state") == "ringing"]

    def device(self, login: str, *, registered: bool = True, auto: Mapping[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"registered": registered}
        if auto is not None:
            body["auto"] = dict(auto)
        return self._ok(self.http.put(f"/sim/v1/devices/{login}", json=body))

    def advance(self, seconds: float) -> str:
        """Move the virtual clock, running every timer due (rings time out, calls go on); the new time."""
        return str(self._ok(self.http.post("/sim/v1/clock/advance", json={"seconds": seconds}))["now"])


@pytest.fixture
def vpbx_sim(vpbx_domain: VpbxDomain) -> VpbxSim:
    return VpbxSim(vpbx_domain.http)


# --- a loopback CRM ------------------------------------------------------------------------------

@dataclass
class Recorded:
    """One request the CRM got: parsed (None if it did not parse), raw, and what was answered."""

    parsed: ParsedRequest | None
    headers: Mapping[str, str]
    body: bytes
    answer: Answer

    @property
    def notice(self) -> Notice | None:
        return None if self.parsed is None else self.parsed.notice


@dataclass
class CrmReceiver:
    receiver: Receiver
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)

    def _record(self, parsed: ParsedRequest | None, headers: Mapping[str, str], body: bytes, answer: Answer) -> None:
        self.requests.append(Recorded(parsed, dict(headers), body, answer))

    def notices(self, command: str | None = None, type: str | None = None) -> list[Any]:
        """The notices received (``command``: history, event, contact, rating, webhook; ``type``: INCOMING...)."""
        out = []
        for r in list(self.requests):
            n = r.notice
            if n is None or (command and n.command != command):
                continue
            if type is not None and str(getattr(n, "type", "")).upper() != type.upper():
                continue
            out.append(n)
        return out

    def wait_for(self, command: str, type: str | None = None, *, count: int = 1, timeout: float = 10) -> Any:
        """The ``count``-th notice of ``command`` (and ``type``), waiting for it at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.notices(command, type)
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                got = [(r.notice.command, getattr(r.notice, "type", None)) if r.notice else r.answer.status
                       for r in self.requests]
                raise AssertionError(f"the CRM got no {command} {type or ''} (x{count}) in {timeout}s; got {got}")
            time.sleep(0.02)


class _Loopback:
    """An ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from vpbx.testing.server import free_port

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    loop="asyncio", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), name="crm-receiver",
                                       daemon=True)

    def start(self) -> _Loopback:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the loopback CRM did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def crm_receiver(vpbx_domain: VpbxDomain) -> Iterator[CrmReceiver]:
    from vpbx.crm import Receiver

    crm = CrmReceiver(Receiver(vpbx_domain.crm_token))
    crm.receiver.observe(crm._record)
    loop = _Loopback(crm.receiver).start()
    crm.url = f"http://127.0.0.1:{loop.port}/crm"
    vpbx_domain.set_crm(crm.url)
    yield crm
    loop.stop()
