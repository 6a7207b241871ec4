"""002 §13 Исходящие номера: the company's, employees', departments' and regional caller IDs."""

from __future__ import annotations

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api import reads
from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.callerids import (
    CallerIdsOut,
    GroupCallerIdSet,
    MainSet,
    Mode,
    RegionCallerIdSet,
    RegionOut,
    TelnumOut,
    UserCallerIdSet,
)
from vpbx.services import callerids

router = section("13. Исходящие номера")
ModeParam = Query("all", description="Used for calls to all, mobile or fixed numbers")


@router.get("/caller-ids", response_model=CallerIdsOut, summary="13.1 Настройки исходящих номеров")
async def overview(
    principal: Principal = Depends(require("callerids.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.callerids_overview(runtime, principal.domain_id))


@router.get("/caller-ids/telnums", response_model=list[TelnumOut], summary="13.2 Список номеров")
async def telnums(
    principal: Principal = Depends(require("callerids.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.callerids_telnums(runtime, principal.domain_id))


@router.post("/caller-ids/main", status_code=204, summary="13.3 Основной номер компании")
async def set_main(
    body: MainSet,
    principal: Principal = Depends(require("callerids.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.set_main(session, principal.domain_id, body.telnum)
    await session.commit()
    return no_content()


@router.post("/caller-ids/users", status_code=204,
             summary="13.4 Установка персонального исходящего номера для сотрудника")
async def set_user(
    body: UserCallerIdSet,
    principal: Principal = Depends(require("callerids.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.set_user(session, principal.domain_id, body.login, body.telnum)
    await session.commit()
    return no_content()


@router.delete("/caller-ids/users/{user}", status_code=204,
               summary="13.4 Удаление персонального исходящего номера для сотрудника")
async def remove_user(
    user: str,
    principal: Principal = Depends(require("callerids.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.remove_user(session, principal.domain_id, user)
    await session.commit()
    return no_content()


@router.post("/caller-ids/groups", status_code=204,
             summary="13.4 Установка персонального исходящего номера для отдела")
async def set_group(
    body: GroupCallerIdSet,
    principal: Principal = Depends(require("callerids.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.set_group(session, principal.domain_id, body.id, body.telnum)
    await session.commit()
    return no_content()


@router.delete("/caller-ids/groups/{id}", status_code=204,
               summary="13.4 Удаление персонального исходящего номера для отдела")
async def remove_group(
    id: str,
    principal: Principal = Depends(require("callerids.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.remove_group(session, principal.domain_id, id)
    await session.commit()
    return no_content()


@router.post("/caller-ids/regions", status_code=204, summary="13.5 Установка регионального исходящего номера")
async def set_region(
    body: RegionCallerIdSet,
    principal: Principal = Depends(require("callerids.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.set_region(session, principal.domain_id, body.id, body.mode, body.telnum)
    await session.commit()
    return no_content()


@router.delete("/caller-ids/regions/{id}", status_code=204, summary="13.5 Удаление регионального исходящего номера")
async def remove_region(
    id: str,
    mode: Mode = ModeParam,
    principal: Principal = Depends(require("callerids.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await callerids.remove_region(session, principal.domain_id, id, mode)
    await session.commit()
    return no_content()


@router.get("/caller-ids/regions", response_model=list[RegionOut], summary="13.5 Получение списка регионов")
async def regions(principal: Principal = Depends(require("callerids.get")),
                  runtime: Runtime = Depends(get_runtime)) -> Response:
    return json_response(await reads.callerids_regions(runtime))
