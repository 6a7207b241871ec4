"""002 §12.5 Запись звонков: the switches and the employees whose calls are not recorded."""

from __future__ import annotations

from fastapi import Body, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.schemas.settings import RecordOut, RecordUpdate
from vpbx.services import settings

router = section("12. Настройки домена")


@router.get("/record", response_model=RecordOut, summary="12.5 Получение настроек записи звонков")
async def get_record(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await settings.record(session, principal.domain_id))


@router.put("/record", status_code=204, summary="vpbx extension: включение и выключение записи звонков",
            description="Either field may be left out to keep its value.")
async def put_record(
    body: RecordUpdate,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.set_record(session, principal.domain_id, external=body.external, inner=body.inner)
    await session.commit()
    return no_content()


@router.post("/record/users-exception", status_code=204,
             summary="12.5 Добавление сотрудников в список исключений")
async def add_exceptions(
    logins: list[str] = Body(..., description="Logins of employees"),
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.add_to_list(session, principal.domain_id, settings.RECORD_EXCEPTIONS, logins)
    await session.commit()
    return no_content()


@router.delete("/record/users-exception", status_code=204,
               summary="12.5 Удаление сотрудников из списка исключений")
async def remove_exceptions(
    user: list[str] | None = Query(None, description="Login of an employee; repeat for several"),
    principal: Principal = Depends(require("more.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await settings.remove_from_list(session, principal.domain_id, settings.RECORD_EXCEPTIONS,
                                    settings.split_names(user))
    await session.commit()
    return no_content()
