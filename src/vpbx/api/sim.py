"""The simulator (/work/shared/design/simulator.md): calls, phones, outside numbers and the clock."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from vpbx.api.auth import OPERATOR_ONLY, Principal, authenticate, get_runtime, require_operator
from vpbx.api.errors import SIM_RESPONSES, ApiError
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.cluster.forward import owner_gate
from vpbx.domain.history import iso
from vpbx.engine import CallEngine, CallError, engine_of
from vpbx.runtime import Runtime
from vpbx.services import tenancy
from vpbx.telephony.sim import DEVICE_ACTIONS, EXTERNAL_ACTIONS, Auto, SimTelephony

# The engine's commands run on the domain's owner (a cluster forwards them; one process: a no-op).
router = APIRouter(prefix="/sim/v1", route_class=Route, tags=["Simulator"], responses=SIM_RESPONSES,
                   dependencies=[Depends(owner_gate)])


class CallIn(BaseModel):
    from_: str = Field(alias="from", description='Client number, "anonymous", or "user:<login|ext>"')
    to: str = Field(description='A domain number; "user:<login|ext>" for an internal call; from "user:...", '
                                'an outside number for an outgoing call')


class PartyIn(BaseModel):
    user: str | None = None


class RejectIn(BaseModel):
    user: str | None = Field(None, description="The employee who declines; without it, the client of an outgoing "
                                               "call refuses")
    reason: Literal["busy", "unavailable", "notfound"] | None = Field(
        None, description="How the client's side refuses an outgoing call (Busy, NotAvailable, NotFound)")


class HangupIn(BaseModel):
    by: str = "client"


class DtmfIn(BaseModel):
    digits: str = Field(min_length=1, max_length=32)


class RateIn(BaseModel):
    rating: int = Field(ge=1, le=5, description="The client's score")


class TransferIn(BaseModel):
    user: str
    to: str
    mode: Literal["blind", "attended"] = "blind"


class AutoIn(BaseModel):
    action: str = "answer"
    after: float = Field(0, ge=0)
    talk: float | None = Field(None, ge=0)


class DeviceIn(BaseModel):
    registered: bool = True
    auto: AutoIn | None = None


class ExternalIn(BaseModel):
    auto: AutoIn


class AdvanceIn(BaseModel):
    seconds: float = Field(ge=0, le=366 * 86400)


def _engine(runtime: Runtime) -> CallEngine:
    return engine_of(runtime)


def _sim(runtime: Runtime) -> SimTelephony:
    if not isinstance(runtime.telephony, SimTelephony):
        raise ApiError(409, "The simulator needs simulated telephony")
    return runtime.telephony


async def _guard(coro: object) -> None:
    try:
        await coro  # type: ignore[misc]
    except CallError as exc:
        raise ApiError(exc.status, exc.message) from None


async def _view_flushed(runtime: Runtime, principal: Principal, callid: str) -> Response:
    """The call after the step's writes are committed (the engine writes behind, in batches)."""
    await _engine(runtime).flush()
    return _view(runtime, principal, callid)


@router.post("/calls", status_code=201,
             summary="Dial: a client calls a domain number, an employee calls an outside number, or an internal call")
async def create_call(body: CallIn, principal: Principal = Depends(authenticate),
                      runtime: Runtime = Depends(get_runtime)) -> Response:
    engine = _engine(runtime)
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, principal.domain_name)
    try:
        if body.from_.startswith("user:"):
            if body.to.startswith("user:"):
                call = await engine.internal(domain, body.from_[5:], body.to[5:])
            else:
                call = await engine.outgoing(domain, body.from_[5:], body.to)
        else:
            call = await engine.incoming(domain, body.from_, body.to)
    except CallError as exc:
        raise ApiError(exc.status, exc.message) from None
    await engine.flush()
    return json_response(call.view(), 201)


@router.get("/calls", summary="Live calls with their legs")
async def list_calls(principal: Principal = Depends(authenticate),
                     runtime: Runtime = Depends(get_runtime)) -> Response:
    return json_response([c.view() for c in _engine(runtime).list_live(principal.domain_id)])


@router.get("/calls/{callid}", summary="One call, live or ended")
async def get_call(callid: str, principal: Principal = Depends(authenticate),
                   runtime: Runtime = Depends(get_runtime)) -> Response:
    try:
        return json_response(_engine(runtime).get(principal.domain_id, callid).view())
    except CallError as exc:
        raise ApiError(exc.status, exc.message) from None


def _view(runtime: Runtime, principal: Principal, callid: str) -> Response:
    """The call the client is on now: after a transfer, the part that goes on."""
    return json_response(_engine(runtime).current(principal.domain_id, callid).view())


@router.post("/calls/{callid}/answer",
             summary="An employee picks up a ringing leg; without user, the client of an outgoing call answers")
async def answer(callid: str, body: PartyIn, principal: Principal = Depends(authenticate),
                 runtime: Runtime = Depends(get_runtime)) -> Response:
    engine = _engine(runtime)
    await _guard(_check(engine, principal, callid))
    who = body.user or _client_of(engine, principal, callid)
    if not who:
        raise ApiError(400, "user: who answers")
    await _guard(engine.answered(callid, who))
    return await _view_flushed(runtime, principal, callid)


@router.post("/calls/{callid}/reject",
             summary="An employee declines (busy); without user, the client of an outgoing call refuses")
async def reject(callid: str, body: RejectIn, principal: Principal = Depends(authenticate),
                 runtime: Runtime = Depends(get_runtime)) -> Response:
    engine = _engine(runtime)
    await _guard(_check(engine, principal, callid))
    who = body.user or _client_of(engine, principal, callid)
    if not who:
        raise ApiError(400, "user: who declines")
    await _guard(engine.rejected(callid, who, body.reason))
    return await _view_flushed(runtime, principal, callid)


@router.post("/calls/{callid}/hangup", summary="The client or an employee hangs up")
async def hangup(callid: str, body: HangupIn, principal: Principal = Depends(authenticate),
                 runtime: Runtime = Depends(get_runtime)) -> Response:
    engine = _engine(runtime)
    await _guard(_check(engine, principal, callid))
    await _guard(engine.hung_up(callid, body.by))
    return await _view_flushed(runtime, principal, callid)


@router.post("/calls/{callid}/dtmf", summary="The client presses keys")
async def dtmf(callid: str, body: DtmfIn, principal: Principal = Depends(authenticate),
               runtime: Runtime = Depends(get_runtime)) -> Response:
    await _guard(_engine(runtime).dtmf(principal.domain_id, callid, body.digits))
    return await _view_flushed(runtime, principal, callid)


@router.post("/calls/{callid}/rate",
             summary="The client's score after the conversation, when the number or department asks for one")
async def rate(callid: str, body: RateIn, principal: Principal = Depends(authenticate),
               runtime: Runtime = Depends(get_runtime)) -> Response:
    await _guard(_engine(runtime).rate(principal.domain_id, callid, body.rating))
    return await _view_flushed(runtime, principal, callid)


@router.post("/calls/{callid}/transfer",
             summary="Transfer to an employee, a department (id or extension) or an outside number",
             description="``blind``: the answer is the new call the client is on (its ``callid`` is the TRANSFERRED "
                         "event's ``second_callid``). ``attended``: the client waits while ``user`` calls the target "
                         "(the answer's ``consult`` is that call); ``user`` hanging up completes the transfer.")
async def transfer(callid: str, body: TransferIn, principal: Principal = Depends(authenticate),
                   runtime: Runtime = Depends(get_runtime)) -> Response:
    engine = _engine(runtime)
    try:
        call = await engine.transfer(principal.domain_id, callid, body.user, body.to, body.mode)
    except CallError as exc:
        raise ApiError(exc.status, exc.message) from None
    await engine.flush()
    return json_response(call.view())


def _client_of(engine: CallEngine, principal: Principal, callid: str) -> str:
    """The client's party on an outgoing call ("" on other calls)."""
    call = engine.current(principal.domain_id, callid)
    if call.kind == "outgoing":
        return f"ext:{call.dialed}"
    return f"ext:{call.caller}" if call.direction == "out" else ""  # a transferred outgoing call


async def _check(engine: CallEngine, principal: Principal, callid: str) -> None:
    call = engine.current(principal.domain_id, callid)
    if call.state in ("ended", "refused"):
        raise CallError(409, "The call is over")


@router.put("/devices/{login}", summary="An employee's device: registration and automatic behaviour")
async def put_device(login: str, body: DeviceIn, principal: Principal = Depends(authenticate),
                     runtime: Runtime = Depends(get_runtime)) -> Response:
    sim = _sim(runtime)
    from vpbx.store.repositories import directory as repo

    async with runtime.sessions() as session:
        user = await repo.find_user(session, principal.domain_id, login)
    if user is None:
        raise ApiError(404, "Not found")
    if body.auto is not None and body.auto.action not in DEVICE_ACTIONS:
        raise ApiError(400, f"auto.action: one of {', '.join(DEVICE_ACTIONS)}")
    sim.set_registered(principal.domain_id, user.login, body.registered)
    sim.set_auto(principal.domain_id, user.login,
                 Auto(body.auto.action, body.auto.after, body.auto.talk) if body.auto else None)
    auto = sim.auto_of(principal.domain_id, user.login)
    return json_response({"login": user.login, "registered": body.registered,
                          "auto": None if auto is None else {"action": auto.action, "after": auto.after,
                                                             "talk": auto.talk}})


def _auto_out(auto: Auto) -> dict[str, object]:
    return {"action": auto.action, "after": auto.after, "talk": auto.talk}


def _external_auto(body: ExternalIn) -> Auto:
    if body.auto.action not in EXTERNAL_ACTIONS:
        raise ApiError(400, f"auto.action: one of {', '.join(EXTERNAL_ACTIONS)}")
    return Auto(body.auto.action, body.auto.after, body.auto.talk)


def _external_out(sim: SimTelephony, domain_id: int, phone: str) -> dict[str, object]:
    return {"phone": phone, "auto": _auto_out(sim.external_of(domain_id, phone)),
            "default": sim.external_set(domain_id, phone) is None}


def _externals_out(sim: SimTelephony, domain_id: int) -> Response:
    return json_response({"default": _auto_out(sim.external_default(domain_id)),
                          "numbers": [{"phone": phone, "auto": _auto_out(auto), "default": False}
                                      for phone, auto in sorted(sim.externals(domain_id).items())]})


@router.get("/externals", summary="How outside numbers behave: the domain's default and the numbers set one by one",
            description="Built-in default: answer after 3 s, hang up after 30 s of conversation.")
async def get_externals(principal: Principal = Depends(authenticate),
                        runtime: Runtime = Depends(get_runtime)) -> Response:
    return _externals_out(_sim(runtime), principal.domain_id)


@router.put("/externals", summary="Set how every outside number not set one by one behaves (the default)",
            description='``{"auto": {"action": "answer", "after": 3, "talk": null}}``: ``talk`` null never hangs up.')
async def put_externals_default(body: ExternalIn, principal: Principal = Depends(authenticate),
                                runtime: Runtime = Depends(get_runtime)) -> Response:
    sim = _sim(runtime)
    sim.set_external_default(principal.domain_id, _external_auto(body))
    return _externals_out(sim, principal.domain_id)


@router.delete("/externals", summary="Back to the built-in default (answer after 3 s, talk 30 s); numbers set "
                                     "one by one are kept")
async def reset_externals_default(principal: Principal = Depends(authenticate),
                                  runtime: Runtime = Depends(get_runtime)) -> Response:
    sim = _sim(runtime)
    sim.set_external_default(principal.domain_id, None)
    return _externals_out(sim, principal.domain_id)


@router.get("/externals/{phone}", summary="How an outside number behaves (``default``: it follows the default)")
async def get_external(phone: str, principal: Principal = Depends(authenticate),
                       runtime: Runtime = Depends(get_runtime)) -> Response:
    return json_response(_external_out(_sim(runtime), principal.domain_id, phone))


@router.put("/externals/{phone}", summary="How an outside number behaves when the PBX calls it")
async def put_external(phone: str, body: ExternalIn, principal: Principal = Depends(authenticate),
                       runtime: Runtime = Depends(get_runtime)) -> Response:
    sim = _sim(runtime)
    sim.set_external(principal.domain_id, phone, _external_auto(body))
    return json_response(_external_out(sim, principal.domain_id, phone))


@router.delete("/externals/{phone}", summary="The outside number follows the domain's default again")
async def delete_external(phone: str, principal: Principal = Depends(authenticate),
                          runtime: Runtime = Depends(get_runtime)) -> Response:
    sim = _sim(runtime)
    sim.set_external(principal.domain_id, phone, None)
    return json_response(_external_out(sim, principal.domain_id, phone))


@router.get("/clock", summary="The clock")
async def get_clock(principal: Principal = Depends(authenticate),
                    runtime: Runtime = Depends(get_runtime)) -> Response:
    if not runtime.clock.virtual:
        raise ApiError(409, "The server runs on the real clock")
    return json_response({"now": iso(runtime.clock.now()), "virtual": True})


@router.post("/clock/advance", summary="Advance the virtual clock, running every timer due",
             description="The clock is shared by every domain of the server: only the operator's key "
                         "(`X-OPERATOR-KEY`) moves it; a domain's `X-API-KEY` gets 403.",
             responses={403: {"description": OPERATOR_ONLY}})
async def advance(request: Request, body: AdvanceIn, _: None = Depends(require_operator),
                  runtime: Runtime = Depends(get_runtime)) -> Response:
    from vpbx.clock import VirtualClock
    from vpbx.cluster.forward import on_all

    if not isinstance(runtime.clock, VirtualClock):
        raise ApiError(409, "The server runs on the real clock")
    now = await runtime.clock.advance(body.seconds)
    await _engine(runtime).flush()
    await on_all(request, runtime)  # a cluster: every node's clock (each owner runs its domains' timers)
    return json_response({"now": iso(now), "virtual": True})
