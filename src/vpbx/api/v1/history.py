"""002 §4 История звонков: external and internal history, CSV and JSON, streamed."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request
from starlette.responses import StreamingResponse

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.pagination import MAX_INT
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.services import history

# Each export validates its filter and runs its query (``history.opened``) before answering: once the 200 is sent,
# the rows only stream, so an error is an ordinary 400/500 answer and never a body cut short.
router = section("4. История звонков")

CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"

StartParam = Query(None, description="Start of the period, UTC: YYYYmmddTHHMMSSZ or YYYY-MM-DDTHH:MM:SSZ")
EndParam = Query(None, description="End of the period (inclusive), UTC, same formats")
PeriodParam = Query(None, description="today, yesterday, this_week, last_week, this_month, last_month "
                                      "(in the domain's timezone); wins over start/end (4.5)")
LimitParam = Query(None, ge=0, le=MAX_INT, description="At most this many records, newest first")
UserParam = Query(None, description="Employee login")
ExternalType = Query(None, description="all, in, out or missed")
InnerType = Query(None, description="all, success or noanswer")


def _list(request: Request, name: str) -> list[str]:
    return request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")


def _external_filter(request: Request, runtime: Runtime, principal: Principal, **params: Any) -> Any:
    return history.external_filter(
        now=runtime.clock.now(), timezone=principal.timezone,
        groups=_list(request, "groups"), missed_status=_list(request, "missedStatus"), **params,
    )


@router.get("/history/csv", summary="4.1 Выгрузка внешней истории (csv)",
            responses={200: {"content": {"text/csv": {}},
                             "description": "uid,type,client,account,via,start,wait,duration,record[,rating]"}})
async def external_csv(
    request: Request,
    start: str | None = StartParam,
    end: str | None = EndParam,
    period: str | None = PeriodParam,
    type: str | None = ExternalType,
    limit: int | None = LimitParam,
    user: str | None = UserParam,
    diversion: str | None = Query(None, description="The domain's number"),
    client: str | None = Query(None, description="The client's number"),
    principal: Principal = Depends(require("history.get")),
    runtime: Runtime = Depends(get_runtime),
) -> StreamingResponse:
    f = _external_filter(request, runtime, principal, period=period, start=start, end=end, type=type,
                         limit=limit, user=user, diversion=diversion, client=client)
    body = await history.stream_external_csv(runtime.sessions, principal.domain_id, principal.domain_name, f)
    return StreamingResponse(body, media_type=CSV_TYPE)


@router.get("/history/json", summary="4.2 Выгрузка внешней истории (json)")
async def external_json(
    request: Request,
    start: str | None = StartParam,
    end: str | None = EndParam,
    period: str | None = PeriodParam,
    type: str | None = ExternalType,
    limit: int | None = LimitParam,
    user: str | None = UserParam,
    diversion: str | None = Query(None, description="The domain's number"),
    client: str | None = Query(None, description="The client's number"),
    groups: list[str] | None = Query(None, description="Department ids (repeated or comma-separated)"),
    first_answered: bool = Query(False, description="Show the first employee who answered"),
    process_missed: bool = Query(False, alias="processMissed", description="Add missedStatus to missed calls"),
    missed_status: list[str] | None = Query(None, alias="missedStatus", description="1, 2, 3 or 4"),
    principal: Principal = Depends(require("history.get")),
    runtime: Runtime = Depends(get_runtime),
) -> StreamingResponse:
    f = _external_filter(request, runtime, principal, period=period, start=start, end=end, type=type,
                         limit=limit, user=user, diversion=diversion, client=client)
    body = await history.stream_external_json(runtime.sessions, principal.domain_id, f, first_answered,
                                              process_missed)
    return StreamingResponse(body, media_type=JSON_TYPE)


def _inner_filter(runtime: Runtime, principal: Principal, **params: Any) -> Any:
    return history.inner_filter(now=runtime.clock.now(), timezone=principal.timezone, **params)


@router.get("/history/inner/csv", summary="4.3 Выгрузка внутренней истории (csv)",
            responses={200: {"content": {"text/csv": {}},
                             "description": "uid,status,from,to,start,wait,duration,record"}})
async def inner_csv(
    start: str | None = StartParam,
    end: str | None = EndParam,
    period: str | None = PeriodParam,
    type: str | None = InnerType,
    limit: int | None = LimitParam,
    user: str | None = UserParam,
    principal: Principal = Depends(require("history.get")),
    runtime: Runtime = Depends(get_runtime),
) -> StreamingResponse:
    f = _inner_filter(runtime, principal, period=period, start=start, end=end, type=type, limit=limit, user=user)
    body = await history.stream_inner_csv(runtime.sessions, principal.domain_id, principal.domain_name, f)
    return StreamingResponse(body, media_type=CSV_TYPE)


@router.get("/history/inner/json", summary="4.4 Выгрузка внутренней истории (json)")
async def inner_json(
    start: str | None = StartParam,
    end: str | None = EndParam,
    period: str | None = PeriodParam,
    type: str | None = InnerType,
    limit: int | None = LimitParam,
    user: str | None = UserParam,
    principal: Principal = Depends(require("history.get")),
    runtime: Runtime = Depends(get_runtime),
) -> StreamingResponse:
    f = _inner_filter(runtime, principal, period=period, start=start, end=end, type=type, limit=limit, user=user)
    body = await history.stream_inner_json(runtime.sessions, principal.domain_id, f)
    return StreamingResponse(body, media_type=JSON_TYPE)
