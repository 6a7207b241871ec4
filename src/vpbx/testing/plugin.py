"""The pytest plugin of the CRM developer's kit (entry point ``vpbx``; loaded once vpbx is installed).

Fixtures (all prefixed, so they never clash with a project's own):

- ``vpbx_server``: a real vpbx on a free loopback port, a fresh store (SQLite in a temporary
  directory, or ``--vpbx-db URL``) and the virtual clock; one per session.
- ``vpbx_domain``: a fresh domain with the demo company (10 employees, 3 departments, the number
  74951234567), every employee's phone registered; known ``api_key``, ``legacy_token`` and
  ``crm_token``; ``vpbx_domain.client`` is a ``vpbx.client.Client`` (with the server's operator key, so
  its ``sim.advance`` moves the clock); ``vpbx_domain.set_crm(url)`` points its CRM integration at a CRM
  you run, ``vpbx_domain.serve_crm(app)`` serves your own ASGI app (a ``vpbx.crm.Receiver``, FastAPI,
  Starlette...) on loopback for the test and points the integration at it.
- ``vpbx_sim``: the simulator over ``/sim/v1`` (answers are dicts, the JSON of the call): ``place``,
  ``answer``, ``reject``, ``hangup``, ``transfer``, ``dtmf``, ``rate``, ``advance``, and whole flows:
  ``click_to_call``, ``attended_transfer``, ``rated_call``; ``vpbx_sim.api`` is the typed ``vpbx.client.Sim``.
- ``crm_receiver``: a loopback CRM built on ``vpbx.crm.Receiver`` that records every request, already
  connected to ``vpbx_domain``; register answers with ``crm_receiver.receiver.on_contact``.
- ``vpbx_async_client`` (with pytest-asyncio): a ``vpbx.client.AsyncClient`` of ``vpbx_domain``; its
  ``.sim`` is the typed ``AsyncSim`` with the same flows. ``await crm_receiver.wait_for_async(...)``.

``serve_app(app)`` serves any ASGI app on a free loopback port (a context manager with ``url``);
``wait_until(check)`` waits for a condition (what your own CRM received), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from vpbx.client import AsyncClient, Client, Sim
    from vpbx.crm import Answer, ParsedRequest, Receiver
    from vpbx.notify.payloads import Notice
    from vpbx.testing.server import ServerThread

T = TypeVar("T")
DEMO_NUMBER = "74951234567"
DEMO_LOGINS = ("admin", "user1", "director", "manager", "ivan", "maria", "sergey", "anna", "elena", "dmitry")


def wait_until(check: Callable[[], T], timeout: float = 10, message: str = "") -> T:
    """``check()``'s first true result, asked every 20 ms; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(message or f"the condition was not met in {timeout}s")
        time.sleep(0.02)
    return result


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
    served: list[LoopbackServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def serve_crm(self, app: Any, path: str = "/", *, token: str | None = None, dialect: str = "form",
                  signing_secret: str | None = None, lookup_timeout: float | None = None) -> str:
        """Serve ``app`` (any ASGI app: your ``vpbx.crm.Receiver``, FastAPI or Starlette app) on a free loopback
        port until the test ends, and point the domain's CRM integration at ``path`` on it; the URL.

        ``token`` defaults to ``crm_token``: build your receiver with ``vpbx_domain.crm_token`` (or pass yours).
        """
        served = serve_app(app)
        self.served.append(served)
        url = served.url + "/" + path.lstrip("/")
        self.set_crm(url, token=token, dialect=dialect, signing_secret=signing_secret, lookup_timeout=lookup_timeout)
        return url

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
            self.client.sim.set_device(login, registered=registered)


@pytest.fixture
def vpbx_domain(vpbx_server: ServerThread) -> Iterator[VpbxDomain]:
    from vpbx.client import Client
    from vpbx.testing.server import create_tenant

    tenant = create_tenant(vpbx_server)
    domain = VpbxDomain(vpbx_server, tenant.name, tenant.api_key, tenant.legacy_token,
                        f"crm-{uuid.uuid4().hex[:16]}",
                        Client(vpbx_server.url, tenant.api_key, legacy_token=tenant.legacy_token,
                               operator_key=vpbx_server.operator_key), tenant.client)
    domain.register()
    yield domain
    for served in domain.served:
        served.stop()
    domain.client.close()
    tenant.client.close()


# --- the simulator -------------------------------------------------------------------------------

class VpbxSim:
    """The simulator of ``/sim/v1`` (design/simulator.md); each call answers the call's view (a dict, the JSON
    the server sent). ``api`` is the same simulator typed (``vpbx.client.Sim``, pydantic models)."""

    def __init__(self, api: Sim) -> None:
        self.api = api

    @staticmethod
    def _view(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", by_alias=True)

    def place(self, frm: str, to: str = DEMO_NUMBER) -> dict[str, Any]:
        """A client (``79101234567``, ``anonymous``) dials a domain number, or ``user:andy`` dials ``user:702``."""
        return self._view(self.api.place(frm, to))

    def call(self, callid: str) -> dict[str, Any]:
        return self._view(self.api.get_call(callid))

    def calls(self) -> list[dict[str, Any]]:
        return [self._view(c) for c in self.api.list_calls()]

    def answer(self, callid: str, user: str | None = None) -> dict[str, Any]:
        """``user`` picks up; without ``user``, the client of an outgoing call answers."""
        return self._view(self.api.answer(callid, user))

    def reject(self, callid: str, user: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return self._view(self.api.reject(callid, user, reason=reason))

    def hangup(self, callid: str, by: str = "client") -> dict[str, Any]:
        return self._view(self.api.hangup(callid, by))

    def dtmf(self, callid: str, digits: str) -> dict[str, Any]:
        return self._view(self.api.dtmf(callid, digits))

    def transfer(self, callid: str, user: str, to: str, mode: str = "blind") -> dict[str, Any]:
        return self._view(self.api.transfer(callid, user, to, mode))

    def rate(self, callid: str, rating: int) -> dict[str, Any]:
        """The client's score after the conversation (the number or department must ask for one)."""
        return self._view(self.api.rate(callid, rating))

    def click_to_call(self, phone: str, user: str, *, client_answers: bool = True) -> dict[str, Any]:
        """The CRM's click-to-call (``make_call``): ``user`` picks up, then ``phone`` answers; the call, talking."""
        return self._view(self.api.click_to_call(phone, user, client_answers=client_answers))

    def attended_transfer(self, callid: str, user: str, to: str, *, target_answers: bool = True) -> dict[str, Any]:
        """``user`` consults ``to``, the target picks up, ``user`` hangs up: the client's call afterwards."""
        return self._view(self.api.attended_transfer(callid, user, to, target_answers=target_answers))

    def rated_call(self, frm: str, rating: int, to: str = DEMO_NUMBER, *, talk: float = 0) -> dict[str, Any]:
        """A client calls ``to`` (made to ask for a score), the first employee rung answers, talks ``talk`` s and
        hangs up; the client rates the call ``rating``."""
        return self._view(self.api.rated_call(frm, to, rating, talk=talk))

    def ringing(self, callid: str) -> list[str]:
        """Who rings on the call now: employees' logins (also for their mobile legs), ``ext:<number>`` for
        outside numbers."""
        return self.api.get_call(callid).ringing

    def device(self, login: str, *, registered: bool = True, auto: Mapping[str, Any] | None = None) -> Any:
        return self._view(self.api.set_device(login, registered=registered, auto=auto))

    def external(self, phone: str, auto: Mapping[str, Any]) -> Any:
        """How an outside number behaves when the PBX calls it (default: answer after 3 s, talk 30 s)."""
        return self._view(self.api.set_external(phone, auto))

    def advance(self, seconds: float) -> str:
        """Move the virtual clock, running every timer due (rings time out, calls go on); the new time."""
        return self.api.advance(seconds).now


@pytest.fixture
def vpbx_sim(vpbx_domain: VpbxDomain) -> VpbxSim:
    return VpbxSim(vpbx_domain.client.sim)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio
    pass
else:
    @pytest_asyncio.fixture
    async def vpbx_async_client(vpbx_domain: VpbxDomain) -> AsyncIterator[AsyncClient]:
        """``vpbx_domain``'s ``AsyncClient`` (``.sim``: the typed async simulator), closed after the test."""
        from vpbx.client import AsyncClient

        async with AsyncClient(vpbx_domain.url, vpbx_domain.api_key, legacy_token=vpbx_domain.legacy_token,
                               operator_key=vpbx_domain.server.operator_key) as client:
            yield client


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

    async def wait_for_async(self, command: str, type: str | None = None, *, count: int = 1,
                             timeout: float = 10) -> Any:  # noqa: ASYNC109 - the same call as wait_for
        """``wait_for`` for async tests: it waits in a thread, so the test's event loop keeps running."""
        return await asyncio.to_thread(self.wait_for, command, type, count=count, timeout=timeout)


class LoopbackServer:
    """An ASGI app served by uvicorn on a free loopback port, in a thread (``with serve_app(app) as s:``)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from vpbx.testing.server import free_port

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    loop="asyncio", lifespan="auto"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), name="crm-receiver",
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LoopbackServer:
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


def serve_app(app: Any) -> LoopbackServer:
    """Serve any ASGI app on a free loopback port until ``stop()`` (or the ``with`` block ends)."""
    return LoopbackServer(app).start()


@pytest.fixture
def crm_receiver(vpbx_domain: VpbxDomain) -> Iterator[CrmReceiver]:
    from vpbx.crm import Receiver

    crm = CrmReceiver(Receiver(vpbx_domain.crm_token))
    crm.receiver.observe(crm._record)
    crm.url = vpbx_domain.serve_crm(crm.receiver, "/crm")
    yield crm
