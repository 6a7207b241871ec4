"""002 §12.7 Консоль секретаря (BLF): employees with the secretary console."""

from __future__ import annotations

from fastapi import Body, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.schemas.settings import UserRef
from vpbx.services import settings

router = section("12. Настройки домена")


@router.get("/blf/users", response_model=list[UserRef], summary="12.7 Список сотрудников (BLF)")
async def list_blf(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await settings.blf_users(session, principal.domain_id))


@router.post("/blf/users", status_code=204, summary="12.7 Добавление сотрудников (BLF)")
async def add_blf(
    logins: list[str] = Body(..., description="Logins of employees"),
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.add_to_list(session, principal.domain_id, settings.BLF, logins)
    await session.commit()
    return no_content()


@router.delete("/blf/users", status_code=204, summary="12.7 Удаление сотрудников (BLF)")
async def remove_blf(
    user: list[str] | None = Query(None, description="Login of an employee; repeat for several"),
    principal: Principal = Depends(require("more.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.remove_from_list(session, principal.domain_id, settings.BLF, settings.split_names(user))
    await session.commit()
    return no_content()
