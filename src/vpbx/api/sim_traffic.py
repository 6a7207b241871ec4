"""Generated traffic (simulator.md): ``POST|GET|DELETE /sim/v1/traffic``; the generator is ``vpbx.engine.traffic``."""

from __future__ import annotations

import random

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from vpbx.api.auth import Principal, authenticate, get_runtime
from vpbx.api.errors import SIM_RESPONSES, ApiError
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.cluster.forward import owner_gate
from vpbx.engine import CallError, engine_of, traffic
from vpbx.runtime import Runtime
from vpbx.services import tenancy

# The engine's commands run on the domain's owner (a cluster forwards them; one process: a no-op).
router = APIRouter(prefix="/sim/v1", route_class=Route, tags=["Simulator: generated traffic"], responses=SIM_RESPONSES,
                   dependencies=[Depends(owner_gate)])

MAX_CPM = 60_000.0
MAX_DURATION = 7 * 86400.0
MAX_SECONDS = 86400.0


def _span(value: list[float] | None) -> list[float] | None:
    if value is None:
        return None
    low, high = value
    if low < 0 or high < low or high > MAX_SECONDS:
        raise ValueError(f"[min, max] seconds with 0 <= min <= max <= {MAX_SECONDS:g}")
    return value


class TrafficIn(BaseModel):
    """A run: Poisson arrivals of random clients calling the domain's numbers, devices answering on their own."""

    model_config = ConfigDict(extra="forbid")

    calls_per_minute: float = Field(gt=0, le=MAX_CPM, description="Mean arrival rate")
    duration_s: float = Field(gt=0, le=MAX_DURATION, description="How long calls are placed, seconds")
    numbers: list[str] | None = Field(None, min_length=1, description="The numbers clients dial; default every "
                                                                      "enabled number of the domain")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Same seed and body: same calls and outcomes "
                                                                   "(on the virtual clock); default a random one")
    users: list[str] | None = Field(None, min_length=1, description="Employees whose devices answer automatically "
                                                                    "(logins or extensions); default all")
    answer_probability: float = Field(0.9, ge=0, le=1, description="Chance that a ringing device answers "
                                                                   "(else it lets it ring)")
    answer_after: list[float] = Field([2.0, 8.0], min_length=2, max_length=2,
                                      description="[min, max] seconds a device rings before it answers")
    talk: list[float] = Field([20.0, 180.0], min_length=2, max_length=2,
                              description="[min, max] seconds of conversation")
    patience: list[float] | None = Field(None, min_length=2, max_length=2,
                                         description="[min, max] seconds a client waits for an answer before "
                                                     "hanging up; default: until the PBX ends the call")
    outgoing_share: float = Field(0.0, ge=0, le=1, description="Share of the calls that are employees calling "
                                                               "clients (they answer or are busy)")
    clients: int = Field(200, ge=1, le=100_000, description="How many distinct clients call (repeat callers)")

    _spans = field_validator("answer_after", "talk", "patience")(_span)


def _status(run: traffic.TrafficRun, calls: bool = False) -> Response:
    return json_response(run.status(calls=calls))


@router.post("/traffic", status_code=201, summary="Start generated traffic on the domain (one run at a time)")
async def start(body: TrafficIn, principal: Principal = Depends(authenticate),
                runtime: Runtime = Depends(get_runtime)) -> Response:
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, principal.domain_name)
    config = traffic.TrafficConfig(
        calls_per_minute=body.calls_per_minute, duration_s=body.duration_s,
        seed=body.seed if body.seed is not None else random.SystemRandom().randrange(2**31),
        answer_probability=body.answer_probability, answer_after=(body.answer_after[0], body.answer_after[1]),
        talk=(body.talk[0], body.talk[1]), patience=(body.patience[0], body.patience[1]) if body.patience else None,
        outgoing_share=body.outgoing_share, clients=body.clients)
    try:
        run = await traffic.start(runtime, engine_of(runtime), domain, config, numbers=body.numbers,
                                  users=body.users)
    except CallError as exc:
        raise ApiError(exc.status, exc.message) from None
    return json_response(run.status(), 201)


def _run(runtime: Runtime, principal: Principal) -> traffic.TrafficRun:
    run = traffic.run_of(runtime, principal.domain_id)
    if run is None:
        raise ApiError(404, "Not found")
    return run


@router.get("/traffic", summary="The domain's current (or last) run: state and counts")
async def progress(calls: bool = Query(False, description="List the run's calls (the first 10 000)"),
                   principal: Principal = Depends(authenticate), runtime: Runtime = Depends(get_runtime)) -> Response:
    return _status(_run(runtime, principal), calls)


@router.delete("/traffic", summary="Stop the run: no more calls; the calls up finish normally")
async def stop(principal: Principal = Depends(authenticate), runtime: Runtime = Depends(get_runtime)) -> Response:
    run = _run(runtime, principal)
    run.stop()
    await engine_of(runtime).flush()
    return _status(run)
