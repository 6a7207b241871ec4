"""002 §10 SIM-карты."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.pagination import Page, envelope, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.sims import SimAdd, SimAdded, SimAvailableList, SimList, SimOut
from vpbx.services import sims, tenancy
from vpbx.store.repositories import numbers as repo

router = section("10. SIM-карты")


@router.get("/sims", response_model=SimList, summary="10.1 Список SIM-карт")
async def list_sims(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("sims.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    rows, total = await repo.list_telnums(session, principal.domain_id, page, kind="sim")
    return json_response(envelope(await sims.render(session, principal.domain_id, rows), page, total))


@router.get("/sims-available", response_model=SimAvailableList, summary="10.3 Список SIM-карт для добавления")
async def available(
    principal: Principal = Depends(require("sims.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await sims.available(session, principal.domain_id))


@router.get("/sims/{telnum}", response_model=SimOut, summary="10.2 Получение SIM-карты")
async def get_sim(
    telnum: str,
    principal: Principal = Depends(require("sims.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    row = await sims.get(session, principal.domain_id, telnum)
    return json_response((await sims.render(session, principal.domain_id, [row]))[0])


@router.post("/sims", response_model=SimAdded, summary="10.4 Добавление SIM-карты")
async def add_sim(
    body: SimAdd,
    principal: Principal = Depends(require("sims.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    out = await sims.add(session, domain, body, runtime.clock.now())
    await session.commit()
    return json_response(out)


@router.post("/sims/{telnum}/user/{login}", status_code=204, summary="10.5 Назначение SIM-карты сотруднику")
async def assign_user(
    telnum: str,
    login: str,
    principal: Principal = Depends(require("sims.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await sims.assign_user(session, principal.domain_id, telnum, login)
    await session.commit()
    return no_content()


@router.post("/sims/{telnum}/company", status_code=204, summary="10.6 Назначение SIM-карты общим номером")
async def assign_company(
    telnum: str,
    principal: Principal = Depends(require("sims.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await sims.assign_company(session, principal.domain_id, telnum)
    await session.commit()
    return no_content()


@router.post("/sims/{telnum}/disable", status_code=204, summary="10.7 Выключение SIM-карты")
async def disable(
    telnum: str,
    principal: Principal = Depends(require("sims.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await sims.disable(session, principal.domain_id, telnum)
    await session.commit()
    return no_content()


@router.delete("/sims/{telnum}", status_code=204, summary="10.8 Удаление SIM-карты")
async def delete_sim(
    telnum: str,
    principal: Principal = Depends(require("sims.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await sims.delete(session, principal.domain_id, telnum)
    await session.commit()
    return no_content()
