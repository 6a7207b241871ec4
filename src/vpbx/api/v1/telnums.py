"""002 §9 Номера: numbers, their routes, extra intervals and special days."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api import reads
from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.pagination import Page, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.numbers import CalendarIn, CalendarOut, IntervalIn, IntervalOut, TelnumList, TelnumOut, TelnumRouteIn
from vpbx.services import numbers

router = section("9. Номера")


@router.get("/telnums", response_model=TelnumList, summary="9.1 Список номеров")
async def list_telnums(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("telnums.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.telnums_list(runtime, principal.domain_id, page))


@router.get("/telnums/{telnum}", response_model=TelnumOut, summary="9.2 Получение номера")
async def get_telnum(
    telnum: str,
    principal: Principal = Depends(require("telnums.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.telnum_one(runtime, principal.domain_id, telnum))


@router.post("/telnums/{telnum}", response_model=TelnumOut, summary="9.3 Редактирование маршрута номера")
async def set_route(
    telnum: str,
    body: TelnumRouteIn,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    row = await numbers.set_route(session, principal.domain_id, telnum, body)
    out = (await numbers.render(session, principal.domain_id, [row]))[0]
    await session.commit()
    return json_response(out)


async def _enabled(session: AsyncSession, principal: Principal, telnum: str, on: bool) -> Response:
    await numbers.set_enabled(session, principal.domain_id, telnum, on)
    await session.commit()
    return no_content()


@router.delete("/telnums/{telnum}/enabled", status_code=204, summary="9.4 Выключение приема звонков")
async def disable(
    telnum: str,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _enabled(session, principal, telnum, False)


@router.post("/telnums/{telnum}/enabled", status_code=204, summary="9.5 Включение приема звонков")
async def enable(
    telnum: str,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _enabled(session, principal, telnum, True)


async def _save(session: AsyncSession, principal: Principal, telnum: str, kind: str, body: IntervalIn | CalendarIn,
                rule_id: str | None = None) -> Response:
    out = await numbers.save_rule(session, principal.domain_id, telnum, kind, body, rule_id)
    await session.commit()
    return json_response(out)


async def _delete(session: AsyncSession, principal: Principal, telnum: str, kind: str, rule_id: str) -> Response:
    await numbers.delete_rule(session, principal.domain_id, telnum, kind, rule_id)
    await session.commit()
    return no_content()


@router.post("/telnums/{telnum}/interval-schedule", response_model=IntervalOut,
             summary="9.7 Добавление дополнительного интервала")
async def add_interval(
    telnum: str,
    body: IntervalIn,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _save(session, principal, telnum, "interval", body)


@router.put("/telnums/{telnum}/interval-schedule/{id}", response_model=IntervalOut,
            summary="9.7 Редактирование дополнительного интервала")
async def update_interval(
    telnum: str,
    id: str,
    body: IntervalIn,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _save(session, principal, telnum, "interval", body, id)


@router.delete("/telnums/{telnum}/interval-schedule/{id}", status_code=204,
               summary="9.7 Удаление дополнительного интервала")
async def delete_interval(
    telnum: str,
    id: str,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _delete(session, principal, telnum, "interval", id)


@router.post("/telnums/{telnum}/calendar-schedule", response_model=CalendarOut,
             summary="9.8 Добавление особенного дня")
async def add_calendar(
    telnum: str,
    body: CalendarIn,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _save(session, principal, telnum, "calendar", body)


@router.put("/telnums/{telnum}/calendar-schedule/{id}", response_model=CalendarOut,
            summary="9.8 Редактирование особенного дня")
async def update_calendar(
    telnum: str,
    id: str,
    body: CalendarIn,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _save(session, principal, telnum, "calendar", body, id)


@router.delete("/telnums/{telnum}/calendar-schedule/{id}", status_code=204,
               summary="9.8 Удаление особенного дня")
async def delete_calendar(
    telnum: str,
    id: str,
    principal: Principal = Depends(require("telnums.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _delete(session, principal, telnum, "calendar", id)
