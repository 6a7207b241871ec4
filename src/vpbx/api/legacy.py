"""The legacy command API (000/001/004 §5): ``/sys/crm_api.wcgp`` with ``cmd=`` and ``token=``.

One URL for every command. ``cmd``, ``token`` and the parameters come as form fields (POST,
urlencoded or multipart; a JSON object body is read too) or in the query string (GET or POST);
form fields win over the query string. Command names are case-insensitive, and ``subscriptionStatus``
is also accepted as 000's ``subscribtionstatus``. Each command allows the methods 000 §3 lists.

Errors are the documents' two: 400 ``{"error": "Invalid parameters"}`` and 401
``{"error": "Invalid token"}``. A token whose integration is off (or switched off) is answered as
an invalid token: the legacy API has no other refusal, and a CRM must stop using it either way.

Every command runs on the services REST v1 uses (``services.users``, ``services.history``); the
only legacy-specific logic is in ``services.legacy`` (token, list shapes, the CRM user map).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from vpbx.api import reads
from vpbx.api.auth import check_host, get_runtime
from vpbx.api.errors import ApiError
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.runtime import Runtime
from vpbx.services import history, legacy, users
from vpbx.services.errors import Invalid, ServiceError

PATH = "/sys/crm_api.wcgp"
CSV_TYPE = "text/csv; charset=utf-8"
INVALID_PARAMETERS = {"error": "Invalid parameters"}
INVALID_TOKEN = {"error": "Invalid token"}

router = APIRouter(tags=["Legacy API"], route_class=Route)


class _BadRequest(Exception):
    """Unreadable parameters: 400 Invalid parameters."""


@dataclass
class Ctx:
    runtime: Runtime
    session: AsyncSession
    caller: legacy.Caller
    params: dict[str, str]

    def get(self, *names: str) -> str | None:
        """The first of ``names`` given with a non-blank value (000 says ``group_id``, 004 ``group``)."""
        for name in names:
            value = self.params.get(name)
            if value is not None and value.strip():
                return value.strip()
        return None

    async def user(self, *, direct_number: bool = False) -> str:
        """The login of the employee ``user`` names (CRM id when mapped, login, extension ...)."""
        found = await legacy.resolve_user(self.session, self.caller, self.get("user"), direct_number=direct_number)
        return found.login


Handler = Callable[[Ctx], Awaitable[Response]]

_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")


def _flag(value: str | None, field: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(field, "expected on/off or true/false")


# --- commands ------------------------------------------------------------------------------------

async def accounts(ctx: Ctx) -> Response:
    """000 §5.1."""
    return json_response(await reads.legacy_accounts(ctx.runtime, ctx.caller.domain_id))


async def groups(ctx: Ctx) -> Response:
    """000 §5.2: all departments, or those of ``user``."""
    return json_response(await reads.legacy_groups(ctx.runtime, ctx.caller, ctx.get("user")))


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Invalid("limit", "expected a whole number") from None


async def history_csv(ctx: Ctx) -> Response:
    """000 §5.4: CSV ``UID,type,client,account,via,start,wait,duration,record[,rating]``, the same
    rows (and the same one writer) as REST v1's 4.1."""
    f = history.external_filter(
        now=ctx.runtime.clock.now(), timezone=ctx.caller.timezone, period=ctx.get("period"),
        start=ctx.get("start"), end=ctx.get("end"), type=ctx.get("type"), limit=_limit(ctx.get("limit")),
    )
    body = await history.stream_external_csv(ctx.runtime.sessions, ctx.caller.domain_id, ctx.caller.domain_name,
                                             f)
    return StreamingResponse(body, media_type=CSV_TYPE)


async def subscribe_on_calls(ctx: Ctx) -> Response:
    """000/004 §5.5: ``status`` on/off in ``group_id`` (000) or ``group`` (004); in all the
    employee's departments when neither is given."""
    on = _flag(ctx.get("status"), "status")
    login = await ctx.user()
    await users.set_subscription(ctx.session, ctx.caller.domain_id, login, ctx.get("group_id", "group"), on)
    await ctx.session.commit()
    return _ok()


def _ok() -> Response:
    """200 with the body ``OK``: 000's "200 OK" for subscribeOnCalls, 004's empty 200 "ОК"; the clients of both
    editions accept exactly this (a JSON ``{}`` fails the 000 clients that compare the body with ``OK``)."""
    return Response(b"OK", 200, media_type="text/plain; charset=utf-8")


async def subscription_status(ctx: Ctx) -> Response:
    """000/004 §5.6: ``{"status": "on"|"off"}``; without a department, whether the employee takes
    calls in every department they belong to (the same rule as REST v1's 6.7)."""
    login = await ctx.user()
    on = await users.subscription(ctx.session, ctx.caller.domain_id, login, ctx.get("group_id", "group"))
    return json_response({"status": "on" if on else "off"})


async def set_dnd(ctx: Ctx) -> Response:
    """000 §5.7: ``state`` true|false; answers ``OK`` (see ``_ok``)."""
    on = _flag(ctx.get("state"), "state")
    login = await ctx.user()
    await users.set_dnd(ctx.session, ctx.caller.domain_id, login, on)
    await ctx.session.commit()
    return _ok()


async def get_dnd(ctx: Ctx) -> Response:
    """000 §5.8: ``{"state": true|false}``."""
    user = await users.get(ctx.session, ctx.caller.domain_id, await ctx.user())
    return json_response({"state": bool(user.dnd)})


def _number(value: str | None, field: str) -> str:
    try:
        return normalize_number(value or "")
    except InvalidNumber:
        raise Invalid(field, "not a phone number") from None


def _callid(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, tuple):  # services.calls.make_call: (callid, clid)
        return str(result[0])
    if isinstance(result, dict):
        return str(result["callid"])
    return str(result.callid)


async def make_call(ctx: Ctx) -> Response:
    """000/001/004 §5.3: ``user`` (login, extension or direct number), ``phone`` (with or without
    ``+``), optional ``clid``. Answers ``{"CallID": id}`` in the 000 edition, ``{"uuid": id}`` in the 001/004
    edition (the integration's ``legacy_edition``). Registered only once ``vpbx.services.calls`` (issue 7) exists;
    the contract: ``make_call(session, runtime, domain_id, *, user, phone, clid)`` returning
    ``(callid, clid)`` (a str, or an object/dict with ``callid``, are read too)."""
    phone = _number(ctx.get("phone"), "phone")
    clid = _number(ctx.get("clid"), "clid") if ctx.get("clid") is not None else None
    login = await ctx.user(direct_number=True)
    calls: Any = importlib.import_module("vpbx.services.calls")
    result = await calls.make_call(ctx.session, ctx.runtime, ctx.caller.domain_id, user=login, phone=phone, clid=clid)
    await ctx.session.commit()
    return json_response(legacy.make_call_answer(ctx.caller.edition, _callid(result)))


GET_POST = frozenset({"GET", "POST"})
POST = frozenset({"POST"})

# Lower-cased command name -> (handler, methods allowed), as 000 §3 lists them.
COMMANDS: dict[str, tuple[Handler, frozenset[str]]] = {
    "accounts": (accounts, GET_POST),
    "groups": (groups, GET_POST),
    "history": (history_csv, GET_POST),
    "subscribeoncalls": (subscribe_on_calls, POST),
    "subscriptionstatus": (subscription_status, GET_POST),
    "subscribtionstatus": (subscription_status, GET_POST),  # 000's spelling
    "set_dnd": (set_dnd, POST),
    "get_dnd": (get_dnd, GET_POST),
}
# makeCall needs click-to-call (issue 7): served only once its service exists.
if importlib.util.find_spec("vpbx.services.calls") is not None:  # pragma: no cover - issue 7
    COMMANDS["makecall"] = (make_call, POST)


# --- the endpoint --------------------------------------------------------------------------------

async def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = dict(request.query_params.items())
    if request.method != "POST":
        return params
    ctype = request.headers.get("content-type", "").lower()
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
            return params
        body = await request.body()
        if not body.strip():
            return params
        if "json" in ctype:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise _BadRequest
            params.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()
                           if v is not None})
        else:  # application/x-www-form-urlencoded, or a form sent without a Content-Type
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError, AssertionError, RecursionError) as exc:  # RecursionError: nested deep
        raise _BadRequest from exc
    return params


async def serve(request: Request, runtime: Runtime) -> Response:
    try:
        params = await _params(request)
    except _BadRequest:
        return json_response(INVALID_PARAMETERS, 400)
    # The token's domain as the fast GETs read it (api.fastpath): cached until an access change (a token
    # regenerated, the integration switched off) is committed by any process, then read again.
    caller = await runtime.auth.legacy_caller(runtime, params.get("token"))
    if caller is None:
        return json_response(INVALID_TOKEN, 401)
    try:
        await check_host(runtime, _principal_view(caller), request.headers.get("host", ""))
    except ApiError:
        return json_response(INVALID_TOKEN, 401)
    command = COMMANDS.get((params.get("cmd") or "").strip().lower())
    # The request log names the domain and the command (vpbx.logs.RequestLog); never the token.
    request.state.principal, request.state.cmd = caller, (params.get("cmd") or "").strip()[:64]
    if command is None or request.method not in command[1]:
        return json_response(INVALID_PARAMETERS, 400)
    if command[0] is make_call:  # a cluster runs it on the domain's owner (the form as parsed: read once)
        from vpbx.cluster.forward import on_owner

        await on_owner(request, runtime, caller.domain_id, body=urlencode(params).encode(),
                       content_type="application/x-www-form-urlencoded")
    async with runtime.sessions() as session:  # no connection is taken until a command reads or writes
        try:
            return await command[0](Ctx(runtime, session, caller, params))
        except ServiceError:
            await session.rollback()
            return json_response(INVALID_PARAMETERS, 400)


@dataclass(frozen=True)
class _HostView:
    domain_name: str


def _principal_view(caller: legacy.Caller) -> Any:
    """``check_host`` reads only ``domain_name``: a Host naming another tenant is refused, as in v1."""
    return _HostView(caller.domain_name)


_PARAMS_DOC = [
    {"name": "cmd", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "accounts, groups, history, subscribeOnCalls, subscriptionStatus (subscribtionstatus), "
                    "set_dnd, get_dnd (case-insensitive); also accepted as a form field"},
    {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "The domain's legacy token; also accepted as a form field"},
]
_FORM_DOC = {
    "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "properties": {name: {"type": "string"} for name in (
            "cmd", "token", "user", "group_id", "group", "status", "state", "period", "start", "end", "type",
            "limit")},
    }}},
}
_ERROR_DOC = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON (history: CSV without a header, CRLF line ends; subscribeOnCalls and set_dnd: "
                         "the text OK; makeCall: {\"CallID\"} in the 000 edition, {\"uuid\"} in 001/004)",
          "content": {"application/json": {}, "text/csv": {}, "text/plain": {}}},
    400: {"description": '{"error": "Invalid parameters"}', "content": {"application/json": {"schema": _ERROR_DOC}}},
    401: {"description": '{"error": "Invalid token"} (also when the integration is off)',
          "content": {"application/json": {"schema": _ERROR_DOC}}},
}


@router.get(PATH, summary="Legacy command (GET: accounts, groups, history, subscriptionStatus, get_dnd)",
            responses=_RESPONSES, openapi_extra={"parameters": _PARAMS_DOC})
async def legacy_get(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    return await serve(request, runtime)


@router.post(PATH, summary="Legacy command (every command)", responses=_RESPONSES,
             openapi_extra={"parameters": _PARAMS_DOC, "requestBody": _FORM_DOC})
async def legacy_post(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    return await serve(request, runtime)
