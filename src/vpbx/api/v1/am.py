"""002 §12.8 Автоответчик компании: who gets the company answering machine's messages."""

from __future__ import annotations

from fastapi import Body, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.schemas.settings import AmOut, AmUpdate
from vpbx.services import settings

router = section("12. Настройки домена")


@router.get("/am", response_model=AmOut, summary="12.8 Настройки автоответчика")
async def get_am(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await settings.am(session, principal.domain_id))


@router.put("/am", status_code=204, summary="vpbx extension: пересылка всем и дополнительный email",
            description="Either field may be left out to keep its value; `email: \"\"` removes the address.")
async def put_am(
    body: AmUpdate,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.set_am(session, principal.domain_id, all_=body.all, email=body.email)
    await session.commit()
    return no_content()


@router.post("/am/users", status_code=204,
             summary="12.8 Добавление сотрудников для пересылки сообщений автоответчика")
async def add_am_users(
    logins: list[str] = Body(..., description="Logins of employees"),
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.add_to_list(session, principal.domain_id, settings.AM, logins)
    await session.commit()
    return no_content()


@router.delete("/am/users", status_code=204,
               summary="12.8 Удаление сотрудников из пересылки сообщений автоответчика")
async def remove_am_users(
    user: list[str] | None = Query(None, description="Login of an employee; repeat for several"),
    principal: Principal = Depends(require("more.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.remove_from_list(session, principal.domain_id, settings.AM, settings.split_names(user))
    await session.commit()
    return no_content()


@router.post("/am/groups", status_code=204,
             summary="12.8 Добавление отделов для пересылки сообщений автоответчика")
async def add_am_groups(
    ids: list[str] = Body(..., description="Department ids"),
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.add_am_groups(session, principal.domain_id, ids)
    await session.commit()
    return no_content()


@router.delete("/am/groups", status_code=204,
               summary="12.8 Удаление отделов из пересылки сообщений автоответчика")
async def remove_am_groups(
    group: list[str] | None = Query(None, description="Department id; repeat for several"),
    principal: Principal = Depends(require("more.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.remove_am_groups(session, principal.domain_id, settings.split_names(group))
    await session.commit()
    return no_content()
