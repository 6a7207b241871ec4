"""The configuration reads answered without FastAPI's per-request machinery.

FastAPI's routing and dependency solving alone cost half of a bare Starlette route's throughput (measured: 0.51×
for an endpoint doing nothing), so this pure-ASGI layer answers the plain forms of the cacheable GETs itself: a
table maps each path to the right it needs and the builder in ``api.reads`` — the very function its FastAPI
endpoint calls, so both serve the same bytes from the same cache. Auth runs for every request (``AuthCache``,
emptied by an ``access`` change; the bodies by a ``config`` one: ``store.changes``). Anything else — another
method or path, a query parameter the table does not name or a value that needs FastAPI's validation, an error
the builder raises — goes to FastAPI unchanged, which then answers (or refuses) it exactly as it always does.
The FastAPI endpoints stay the documented operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpbx.api import reads
from vpbx.api.auth import Principal, check_host, principal_for
from vpbx.api.errors import FORBIDDEN, ApiError
from vpbx.api.legacy import INVALID_TOKEN as LEGACY_INVALID_TOKEN
from vpbx.api.legacy import PATH as LEGACY_PATH
from vpbx.runtime import Runtime
from vpbx.store.paging import MAX_INT, Page

V1 = "/crmapi/v1"
MAX_LIMIT = 100_000  # api.pagination.page_params: limit <= 100000


class _Fallthrough(Exception):
    """FastAPI answers this request."""


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request asks of a read: the path's last segment (for ``/things/{id}``) and its query."""

    segment: str
    query: dict[str, str]

    def page(self) -> Page:
        """``search``, ``start``, ``limit`` as ``page_params`` reads them; other forms go to FastAPI."""
        start, limit = self.query.get("start"), self.query.get("limit")
        return Page(search=self.query.get("search", ""), start=_integer(start, MAX_INT) if start is not None else 0,
                    limit=_integer(limit, MAX_LIMIT) if limit is not None else None)

    def status(self) -> str | None:
        """``with``: absent, or ``status`` (the live registrations); any other value is FastAPI's 400."""
        value = self.query.get("with")
        if value not in (None, "status"):
            raise _Fallthrough
        return value

    def without(self, name: str) -> None:
        if name in self.query:
            raise _Fallthrough


def _integer(value: str, most: int) -> int:
    if not value.isdigit() or len(value) > 19 or int(value) > most:
        raise _Fallthrough  # FastAPI gives the documented 400 naming the field
    return int(value)


Build = Callable[[Runtime, Principal, Ask], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Read:
    right: str
    build: Build
    query: frozenset[str] = frozenset()  # the query parameters this form takes; any other goes to FastAPI


PAGE = frozenset({"search", "start", "limit"})


async def _users(rt: Runtime, p: Principal, a: Ask) -> bytes:
    return await reads.users_list(rt, p.domain_id, a.page(), a.status())


async def _user(rt: Runtime, p: Principal, a: Ask) -> bytes:
    return await reads.user_one(rt, p.domain_id, a.segment, a.status())


async def _blacklist(rt: Runtime, p: Principal, a: Ask) -> bytes:
    a.without("with")
    return await reads.blacklist_list(rt, p.domain_id, False)


async def _sipreg(rt: Runtime, p: Principal, a: Ask) -> bytes:
    from vpbx.api.v1.sipregs import path_telnum

    return await reads.sipreg_one(rt, p.domain_id, path_telnum(a.segment))


# Paths answered here, exactly; ``ONE`` holds ``/things/`` prefixes whose next (last) segment names one thing.
EXACT: dict[str, Read] = {
    f"{V1}/users": Read("users.get", _users, PAGE | {"with"}),
    f"{V1}/groups": Read("groups.get", lambda rt, p, a: reads.groups_list(rt, p.domain_id, a.page()), PAGE),
    f"{V1}/telnums": Read("telnums.get", lambda rt, p, a: reads.telnums_list(rt, p.domain_id, a.page()), PAGE),
    f"{V1}/caller-ids": Read("callerids.get", lambda rt, p, a: reads.callerids_overview(rt, p.domain_id)),
    f"{V1}/caller-ids/telnums": Read("callerids.get", lambda rt, p, a: reads.callerids_telnums(rt, p.domain_id)),
    f"{V1}/caller-ids/regions": Read("callerids.get", lambda rt, p, a: reads.callerids_regions(rt)),
    f"{V1}/blacklist/telnums": Read("blacklist.get", _blacklist, frozenset({"with"})),
    f"{V1}/blacklist/block-anonymous": Read("blacklist.get", lambda rt, p, a: reads.block_anonymous(rt, p.domain_id)),
    f"{V1}/sip-registrations": Read("local_gw.get",
                                    lambda rt, p, a: reads.sipregs_list(rt, p.domain_id, a.page()), PAGE),
}
ONE: dict[str, Read] = {
    f"{V1}/users/": Read("users.get", _user, frozenset({"with"})),
    f"{V1}/groups/": Read("groups.get", lambda rt, p, a: reads.group_one(rt, p.domain_id, a.segment)),
    f"{V1}/telnums/": Read("telnums.get", lambda rt, p, a: reads.telnum_one(rt, p.domain_id, a.segment)),
    f"{V1}/sip-registrations/": Read("local_gw.get", _sipreg),
}


def _find(path: str) -> tuple[Read, str] | None:
    read = EXACT.get(path)
    if read is not None:
        return read, ""
    cut = path.rfind("/") + 1
    read = ONE.get(path[:cut])
    if read is None or cut == len(path):
        return None
    return read, path[cut:]


def _query(raw: bytes, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query as Starlette reads it (the last of repeated names wins), or None when FastAPI should read it."""
    if not raw:
        return {}
    query = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    return query if query.keys() <= allowed else None


LEGACY_NAMES = frozenset({"cmd", "token", "user", "group_id", "group"})
_FORM = "application/x-www-form-urlencoded"


def _form(scope: Scope, body: bytes) -> dict[str, str] | None:
    """The query string and the urlencoded form (a field overrides the query's, as ``api.legacy._params`` merges
    them), or None when FastAPI should read them (another content type, bytes that are not UTF-8, a name this
    path does not take)."""
    ctype = _header(scope, b"content-type").lower()
    if ctype and not ctype.startswith(_FORM):
        return None
    params = _query(scope["query_string"], LEGACY_NAMES)
    if params is None:
        return None
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None
    params.update(fields)
    return params if params.keys() <= LEGACY_NAMES else None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a ``receive`` that gives it again (then the client's further messages)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: FastAPI sees it as it would have
            first: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = []
            break
    body = b"".join(chunks)
    given = [{"type": "http.request", "body": body, "more_body": False}, *first]

    async def replay() -> Message:
        return given.pop(0) if given else await receive()

    return body, replay


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


_JSON = b"application/json"


async def _answer(send: Send, status: int, body: bytes) -> None:
    # The headers a starlette Response with media_type application/json sends, in its order.
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": body})


class FastReads:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] == "POST" and path == LEGACY_PATH:
            await self._legacy_post(scope, receive, send)
            return
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        try:
            if path == LEGACY_PATH:
                status, body = await self._legacy(scope, _query(scope["query_string"], LEGACY_NAMES))
            elif path.startswith(V1):
                status, body = await self._v1(scope, path)
            else:
                raise _Fallthrough
        except _Fallthrough:
            await self.app(scope, receive, send)
            return
        await _answer(send, status, body)

    async def _v1(self, scope: Scope, path: str) -> tuple[int, bytes]:
        found = _find(path)
        if found is None:
            raise _Fallthrough
        read, segment = found
        query = _query(scope["query_string"], read.query)
        if query is None:
            raise _Fallthrough
        try:
            principal = await principal_for(self.runtime, _header(scope, b"x-api-key"))
            await check_host(self.runtime, principal, _header(scope, b"host"))
            scope.setdefault("state", {})["principal"] = principal  # the request log names the domain
            if not principal.can(read.right):
                raise ApiError(403, FORBIDDEN)
        except ApiError as exc:
            return exc.status, orjson.dumps(exc.body())
        try:
            return 200, await read.build(self.runtime, principal, Ask(segment, query))
        except _Fallthrough:
            raise
        except Exception:  # not found, a value to refuse: FastAPI's endpoint answers it in its documented form
            raise _Fallthrough from None

    async def _legacy_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same commands POSTed as form fields, as the legacy API's clients send them (``api.legacy._params``
        reads such a form the same way). The body is read here (the size limit, outside, has bounded it) and
        handed on unchanged to FastAPI for anything else."""
        body, replay = await _buffered(receive)
        try:
            status, answer = await self._legacy(scope, _form(scope, body))
        except _Fallthrough:
            await self.app(scope, replay, send)
            return
        await _answer(send, status, answer)

    async def _legacy(self, scope: Scope, query: dict[str, str] | None) -> tuple[int, bytes]:
        """000 §5.1 ``accounts`` and §5.2 ``groups`` (``api.legacy`` for the rest): ``query``, the parameters given,
        or None when FastAPI should read them."""
        if query is None:
            raise _Fallthrough
        cmd = query.get("cmd", "").strip().lower()
        if cmd not in ("accounts", "groups"):
            raise _Fallthrough
        caller = await self.runtime.auth.legacy_caller(self.runtime, query.get("token"))
        if caller is None:
            return 401, orjson.dumps(LEGACY_INVALID_TOKEN)
        try:
            await check_host(self.runtime, caller, _header(scope, b"host"))  # type: ignore[arg-type]
        except ApiError:
            return 401, orjson.dumps(LEGACY_INVALID_TOKEN)
        try:
            if cmd == "accounts":
                return 200, await reads.legacy_accounts(self.runtime, caller.domain_id)
            user = query.get("user", "").strip() or None
            return 200, await reads.legacy_groups(self.runtime, caller, user)
        except Exception:
            raise _Fallthrough from None
