"""Outbound SIP registrations (002 §15 "Номера других операторов"): vpbx registers each active registration's
``login`` at its ``domain`` (through ``proxy`` when set), digest-authenticated as ``auth_name`` (else ``login``)
with the password sealed at rest, keeps it registered (refreshing before the granted expiry, ``expires`` asked),
and reports the real ``status`` through ``services.sipregs.set_status``: the port's ``set_trunk_status`` and,
entering a failure state, the ``sipregs_error`` webhook (§15.6).

Statuses (``schemas.sipregs.STATUSES``): ``waiting`` while the first REGISTER is out, ``success`` on a 2xx,
``auth_failed`` when the registrar refuses our credentials (401/407 again after we answered its challenge, or a
challenge we cannot answer), ``forbidden`` on 403, ``timeout`` when nobody answers (sippy's 408), ``error``
otherwise (another final response, a host that does not resolve). A failed registration is retried every
``retry`` seconds. ``disabled`` (``active`` off) is the API's own: such registrations are not registered.

Two sides, two threads (``stack.SipStack``): ``_Agent`` lives on sippy's reactor thread and uses sippy's
transaction layer and digest code; ``Registrations`` lives on the asyncio loop, reads the store, starts, replaces
and stops agents as registrations are created, changed or deleted (it follows the store's one change signal,
``store.changes``, so a change made through any process is seen), and writes the statuses agents report. In a
cluster only the domain's owner registers its trunks (``cluster.ownership``); the statuses are that node's.

The Contact registered is ``sip:<telnum>@<our address>``: the other operator's INVITEs for the number come to
that Request-URI (``Registrations.by_contact_user``) from the registrar's address (``Registrations.from_registrar``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpbx.tasks import spawn
from vpbx.telephony.sip.stack import parse_hostport

if TYPE_CHECKING:
    from vpbx.runtime import Runtime
    from vpbx.telephony.sip.stack import SipStack

log = logging.getLogger("vpbx.sip.registrations")

Key = tuple[int, str]  # (domain_id, telnum)
RUNTIME_KEY = "sip_registrations"  # runtime.extras: the running Registrations
DEFAULT_RETRY = 60.0  # seconds between attempts after a failure (sippy's own agent waits 60 s too)
REFRESH_SHARE = 0.9  # refresh at 90% of the granted expiry: the binding never lapses between two REGISTERs
_AUTH_TRIES = 3  # challenges answered in one attempt (a stale nonce may be challenged again)


@dataclass(frozen=True, slots=True)
class Params:
    """What an agent registers with; a change of any field replaces the agent."""

    domain_id: int
    telnum: str
    host: str  # the API's ``domain``: host[:port], the AOR's host part and the Request-URI
    login: str
    auth_name: str
    password: str = field(repr=False)
    expires: int
    proxy: str  # host[:port] to send to instead of ``host``; "" for none

    @property
    def key(self) -> Key:
        return (self.domain_id, self.telnum)


def status_of_response(code: int) -> str:
    """The §15 status a final response to our REGISTER means (a 401/407 reaching here is a challenge we
    answered and that was refused, or one we cannot answer)."""
    if 200 <= code < 300:
        return "success"
    if code in (401, 407):
        return "auth_failed"
    if code == 403:
        return "forbidden"
    if code == 408:
        return "timeout"
    return "error"


class _Agent:
    """One registration on sippy's reactor thread: created, fed and stopped there only (sippy's timers and
    transactions are not thread-safe). ``report(status, detail)`` is called there too, on every status change."""

    def __init__(self, stack: SipStack, params: Params, target: tuple[str, int], contact: tuple[str, int],
                 report: Callable[[str, str], None], retry: float) -> None:
        self.stack = stack
        self.params = params
        self.target = target
        self.contact = contact
        self.report = report
        self.retry = retry
        self.status = ""
        self.dead = False
        self.unregistering = False
        self.registered = False
        self._msg: Any = None
        self._timer: Any = None
        self._auth_tries = 0
        self._sent = 0  # REGISTERs sent (the first keeps the branch the message was built with)

    # --- the REGISTER -------------------------------------------------------------------------------

    def _build(self) -> Any:
        from sippy.SipAddress import SipAddress
        from sippy.SipContact import SipContact
        from sippy.SipExpires import SipExpires
        from sippy.SipFrom import SipFrom
        from sippy.SipRequest import SipRequest
        from sippy.SipTo import SipTo
        from sippy.SipURL import SipURL

        p = self.params
        host, port = parse_hostport(p.host)
        given = (p.host.startswith("[") and "]:" in p.host) or (not p.host.startswith("[") and p.host.count(":") == 1)
        port_shown = port if given else None  # the AOR keeps the domain as the API gave it
        sip_host = f"[{host}]" if ":" in host else host
        aor = SipURL(username=p.login, host=sip_host, port=port_shown)
        ruri = SipURL(host=sip_host, port=port_shown)
        fr0m = SipFrom(address=SipAddress(url=aor.getCopy()))
        fr0m.genTag()
        to = SipTo(address=SipAddress(url=aor.getCopy()))
        chost, cport = self.contact
        contact = SipContact(address=SipAddress(url=SipURL(username=p.telnum,
                                                           host=f"[{chost}]" if ":" in chost else chost,
                                                           port=cport)))
        thost = f"[{self.target[0]}]" if ":" in self.target[0] else self.target[0]
        return SipRequest(method="REGISTER", ruri=ruri, fr0m=fr0m, to=to, contact=contact,
                          target=((thost, self.target[1]), "udp"), expires=SipExpires(number=p.expires))

    def start(self) -> None:
        self._set("waiting", "registering")
        self._send()

    def _send(self) -> None:
        self._timer = None
        if self.dead and not self.unregistering:
            return
        tm = self.stack.tm
        if tm is None:  # the stack stopped under us
            return
        try:
            if self._msg is None:
                self._msg = self._build()
            elif self._sent:
                self._msg.getHFBody("via").genBranch()
                self._msg.getHFBody("cseq").incCSeqNum()
            self._sent += 1
            tm.newTransaction(self._msg, self._reply)
        except Exception as exc:
            log.warning("REGISTER not sent", extra=self._extra(error=type(exc).__name__))
            if not self.unregistering:
                self._fail("error", f"not sent: {type(exc).__name__}")

    def _after(self, seconds: float, fn: Callable[[], None]) -> None:
        from sippy.Time.Timeout import Timeout

        if self._timer is not None:
            self._timer.cancel()
        self._timer = Timeout(fn, max(seconds, 0.05))

    def _reply(self, resp: Any, *_: Any) -> None:
        try:
            self._handle(resp)
        except Exception:
            log.exception("REGISTER reply not handled", extra=self._extra())
            if not self.dead:
                self._fail("error", "reply not understood")

    def _handle(self, resp: Any) -> None:
        code = int(resp.scode)
        if code < 200 or (self.dead and not self.unregistering):
            return
        if code in (401, 407) and self._answer_challenge(resp, code):
            return
        self._auth_tries = 0
        self._drop_auth()  # the next REGISTER is challenged afresh: a nonce is never replayed
        if self.unregistering:
            self.unregistering = False
            self.registered = False
            log.info("SIP registration removed", extra=self._extra(code=code))
            return
        if code == 423 and resp.countHFs("min-expires") > 0:  # Interval Too Brief: ask for what it allows
            with contextlib.suppress(TypeError, ValueError):
                least = int(str(resp.getHFBody("min-expires")).strip())
                expires = self._msg.getHFBody("expires")
                if least > int(expires.getNum()):  # never loop on a registrar that asks for less
                    expires.number = least
                    self._send()
                    return
        status = status_of_response(code)
        if status != "success":
            self._fail(status, f"{code} {resp.reason}")
            return
        granted = self._granted(resp)
        self.registered = True
        self._set("success", f"{code} {resp.reason}; expires {granted}")
        self._after(max(granted * REFRESH_SHARE, min(granted, 1.0)), self._send)

    def _granted(self, resp: Any) -> int:
        """The expiry the registrar granted our Contact (its ``expires`` parameter, else the Expires header)."""
        asked = int(self._msg.getHFBody("expires").getNum())
        user = self.params.telnum
        for body in resp.getHFBodys("contact") if resp.countHFs("contact") else ():
            if getattr(body, "asterisk", False):
                continue
            url = body.getUrl()
            if url.username == user and "expires" in body.address.params:
                with contextlib.suppress(TypeError, ValueError):
                    return max(int(body.address.params["expires"]), 1)
        if resp.countHFs("expires") > 0:
            with contextlib.suppress(TypeError, ValueError):
                return max(int(resp.getHFBody("expires").getNum()), 1)
        return max(asked, 1)

    def _answer_challenge(self, resp: Any, code: int) -> bool:
        """Answer a digest challenge (sippy computes the response); False when it cannot be answered, or our
        credentials were already refused (a challenge again, without ``stale=true``)."""
        challenge_name, answer_name = (("www-authenticate", "authorization") if code == 401
                                       else ("proxy-authenticate", "proxy-authorization"))
        if resp.countHFs(challenge_name) == 0 or self._auth_tries >= _AUTH_TRIES:
            return False
        challenge = resp.getHFBody(challenge_name)
        stale = any(n.lower() == "stale" and v.strip('"').lower() == "true" for n, v in challenge.otherparams)
        if self._auth_tries > 0 and not stale:
            return False
        supported, qop = challenge.supportedAlgorithm()
        if not supported:
            return False
        p = self.params
        auth = challenge.genAuthHF(p.auth_name or p.login, p.password, "REGISTER", str(self._msg.ruri), qop=qop)
        from sippy.SipHeader import SipHeader

        self._drop_auth()
        self._msg.appendHeader(SipHeader(name=answer_name, body=auth))
        self._auth_tries += 1
        self._send()
        return True

    def _drop_auth(self) -> None:
        for name in ("authorization", "proxy-authorization"):
            for header in self._msg.getHFs(name):
                self._msg.removeHeader(header)

    # --- status -------------------------------------------------------------------------------------

    def _fail(self, status: str, detail: str) -> None:
        self.registered = False
        self._set(status, detail)
        self._after(self.retry, self._send)

    def _set(self, status: str, detail: str) -> None:
        if status == self.status:
            return
        self.status = status
        level = logging.WARNING if status not in ("success", "waiting") else logging.INFO
        log.log(level, "SIP registration %s", status, extra=self._extra(status=status, detail=detail))
        self.report(status, detail)

    def _extra(self, **more: Any) -> dict[str, Any]:
        p = self.params
        return {"domain_id": p.domain_id, "telnum": p.telnum, "registrar": p.host, "proxy": p.proxy, **more}

    # --- the end ------------------------------------------------------------------------------------

    def stop(self, unregister: bool) -> None:
        """No more REGISTERs; with ``unregister``, a last one with ``Expires: 0`` removes the binding."""
        self.dead = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if unregister and self.registered and self._msg is not None:
            self.unregistering = True
            self._drop_auth()
            self._msg.getHFBody("expires").number = 0
            self._send()


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host == ""


def _local_toward(target: tuple[str, int]) -> str:
    """Our address as seen on the route to ``target`` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect(target)
        return str(s.getsockname()[0])


class Registrations:
    """Every active §15 registration of the store, kept registered through ``stack``."""

    def __init__(self, runtime: Runtime, stack: SipStack, *, retry: float = DEFAULT_RETRY,
                 poll: float = 0.5) -> None:
        self.runtime = runtime
        self.stack = stack
        self.retry = retry
        self.poll = poll
        self._agents: dict[Key, tuple[Params, _Agent | None]] = {}  # None: waiting to resolve the registrar
        self._targets: dict[Key, tuple[str, int]] = {}
        self._generation: dict[Key, int] = {}
        self._queue: asyncio.Queue[tuple[Key, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._version: int | None = None
        self._domains: set[int] = set()  # domains with registrations, at the last sync
        self._owned_then: set[int] = set()  # those this node registered for
        self._sync_lock = asyncio.Lock()

    # --- what the SIP core asks -----------------------------------------------------------------------

    def by_contact_user(self, user: str) -> Key | None:
        """The registration whose Contact user is ``user`` (the number: INVITEs for it come to our Contact)."""
        for key in self._agents:
            if key[1] == user:
                return key
        return None

    def from_registrar(self, host: str, port: int) -> list[Key]:
        """Registrations whose registrar (or proxy) sends from ``host``:``port``: their INVITEs are trusted."""
        return [key for key, target in self._targets.items() if target == (host, port)]

    def status(self, domain_id: int, telnum: str) -> str | None:
        """The last status the agent reported (None: not registered by this process)."""
        entry = self._agents.get((domain_id, telnum))
        return None if entry is None or entry[1] is None else (entry[1].status or None)

    # --- life -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [spawn(self._writer(), name="vpbx-sipregs-writer"),
                       spawn(self._watch(), name="vpbx-sipregs-watch")]
        await self.sync()

    async def stop(self, *, unregister: bool = True) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        agents = [a for _, a in self._agents.values() if a is not None]
        for key in list(self._agents):
            self._drop(key, unregister=unregister)
        # Let the unregistrations finish (or time out) before the stack may stop: sippy's transaction manager
        # leaves a client transaction's timers running after its shutdown.
        deadline = asyncio.get_running_loop().time() + 2.0
        while agents and asyncio.get_running_loop().time() < deadline and self.stack.tm is not None:
            if not await self.stack.call(lambda: any(a.unregistering for a in agents)):
                break
            await asyncio.sleep(0.02)

    def _owned(self, domain_ids: set[int]) -> set[int]:
        """The domains this node registers for: all of them, or in a cluster those it owns (one node per trunk:
        two would fight over the registrar's binding)."""
        from vpbx.cluster import cluster_of

        cluster = cluster_of(self.runtime)
        return domain_ids if cluster is None else {d for d in domain_ids if cluster.owns(d)}

    async def _watch(self) -> None:
        """Follow the store's change signal (registrations created, changed or deleted anywhere) and, in a
        cluster, the domains this node owns."""
        changes = self.runtime.reader.changes
        while True:
            await asyncio.sleep(self.poll)
            try:
                version = changes.version()
                if version != self._version or self._owned(self._domains) != self._owned_then:
                    await self.sync(version)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SIP registrations not synced")

    async def sync(self, version: int | None = None) -> None:
        """Start, replace and stop agents so that they match the store's active registrations."""
        from vpbx.secrets_store import box_for
        from vpbx.store.repositories import trunks

        async with self._sync_lock:
            if version is None:
                version = self.runtime.reader.changes.version()
            box = box_for(self.runtime.settings)
            async with self.runtime.sessions() as session:
                rows = await trunks.all_sipregs(session)
            self._domains = {r.domain_id for r in rows}
            self._owned_then = owned = self._owned(self._domains)
            wanted: dict[Key, Params] = {}
            for r in rows:
                if not r.active or r.domain_id not in owned:
                    continue
                try:
                    password = box.open(r.password_sealed)
                except Exception:  # sealed under another secret: cannot register; say so once
                    log.warning("SIP registration password unreadable", extra={"domain_id": r.domain_id,
                                                                                 "telnum": r.telnum})
                    password = ""
                wanted[(r.domain_id, r.telnum)] = Params(
                    domain_id=r.domain_id, telnum=r.telnum, host=r.host, login=r.login, auth_name=r.auth_name,
                    password=password, expires=r.expires, proxy=r.proxy)
            for key in list(self._agents):
                if key not in wanted:
                    self._drop(key, unregister=True)
            for key, params in wanted.items():
                entry = self._agents.get(key)
                if entry is not None and entry[0] == params:
                    continue
                if entry is not None:
                    self._drop(key, unregister=True)
                await self._start(params)
            self._version = version

    async def _start(self, params: Params) -> None:
        key = params.key
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        self._agents[key] = (params, None)
        loop = asyncio.get_running_loop()
        try:
            host, port = parse_hostport(params.proxy or params.host)
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            family_first = sorted(infos, key=lambda i: i[0] != socket.AF_INET)  # IPv4 first
            target = (str(family_first[0][4][0]), int(family_first[0][4][1]))
            contact_host = (_local_toward(target) if _wildcard(self.stack.host) else self.stack.host)
        except (OSError, ValueError, IndexError) as exc:
            log.warning("SIP registrar unreachable", extra={"domain_id": key[0], "telnum": key[1],
                                                            "registrar": params.proxy or params.host,
                                                            "error": type(exc).__name__})
            self._queue.put_nowait((key, "error"))

            def again() -> None:
                if self._generation.get(key) == generation and key in self._agents:
                    spawn(self._start(params), name="vpbx-sipregs-retry")

            loop.call_later(self.retry, again)
            return

        def report(status: str, _detail: str) -> None:  # reactor thread
            self.stack.to_loop(self._reported, key, generation, status)

        agent = _Agent(self.stack, params, target, (contact_host, self.stack.port), report, self.retry)
        self._agents[key] = (params, agent)
        self._targets[key] = target
        self.stack.run(agent.start)

    def _drop(self, key: Key, *, unregister: bool) -> None:
        entry = self._agents.pop(key, None)
        self._targets.pop(key, None)
        self._generation[key] = self._generation.get(key, 0) + 1  # late reports of the old agent are ignored
        if entry is not None and entry[1] is not None:
            self.stack.run(entry[1].stop, unregister)

    def _reported(self, key: Key, generation: int, status: str) -> None:
        if self._generation.get(key) == generation:
            self._queue.put_nowait((key, status))

    async def _writer(self) -> None:
        """Statuses into the port (and ``sipregs_error`` webhooks), one at a time, in the order reported."""
        from vpbx.services import sipregs
        from vpbx.services.errors import NotFound

        while True:
            (domain_id, telnum), status = await self._queue.get()
            try:
                async with self.runtime.sessions() as session:
                    await sipregs.set_status(session, domain_id, telnum, status, self.runtime.telephony,
                                             self.runtime.clock.now())
                    await session.commit()
            except NotFound:  # deleted meanwhile
                pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SIP registration status not stored", extra={"domain_id": domain_id,
                                                                            "telnum": telnum, "status": status})


# --- wiring -----------------------------------------------------------------------------------------------


async def start_registrations(runtime: Runtime, stack: SipStack | None = None, *,
                              retry: float = DEFAULT_RETRY) -> Registrations | None:
    """Keep the store's §15 registrations registered through ``stack`` (else the server's SIP stack, when it
    listens: ``vpbx serve --sip``); None when SIP is off. The running agents are ``runtime.extras[RUNTIME_KEY]``.
    A server hook (``app.STARTUP_HOOKS``, after the SIP stack started)."""
    if stack is None:
        from vpbx.telephony.sip import sip_of

        sip = sip_of(runtime)
        stack = sip.stack if sip is not None else None
    if stack is None or stack.tm is None:
        return None
    regs = Registrations(runtime, stack, retry=retry)
    runtime.extras[RUNTIME_KEY] = regs
    await regs.start()
    return regs


async def stop_registrations(runtime: Runtime) -> None:
    """Stop every agent, unregistering what is registered (waits up to 2 s for the registrars' answers).
    A server hook (``app.SHUTDOWN_HOOKS``, before the SIP stack stops)."""
    regs = runtime.extras.pop(RUNTIME_KEY, None)
    if isinstance(regs, Registrations):
        await regs.stop()


async def start(runtime: Runtime) -> None:
    """The server's startup hook (``app.STARTUP_HOOKS``, after ``telephony.sip.start``)."""
    await start_registrations(runtime)


stop = stop_registrations  # the server's shutdown hook (before ``telephony.sip.stop``)
