"""002 §11 Черный список."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api import reads
from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.blacklist import BlacklistIn, BlacklistOut
from vpbx.schemas.common import State
from vpbx.services import blacklist

router = section("11. Черный список")
WithParam = Query(None, alias="with", description="`statistics`: blocked calls per entry in the last week and year")
TelnumsParam = Query(None, description="A number or mask to delete; repeat the parameter for several")


@router.get("/blacklist/telnums", response_model=list[BlacklistOut], summary="11.1 Получение списка номеров")
async def list_blacklist(
    with_: Literal["statistics"] | None = WithParam,
    principal: Principal = Depends(require("blacklist.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.blacklist_list(runtime, principal.domain_id, with_ == "statistics"))


@router.post("/blacklist/telnums", status_code=204, summary="11.2 Добавление номеров")
async def add_numbers(
    body: list[BlacklistIn],
    principal: Principal = Depends(require("blacklist.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    await blacklist.add(session, principal.domain_id, body, runtime.clock.now())
    await session.commit()
    return no_content()


@router.delete("/blacklist/telnums", status_code=204, summary="11.3 Удаление номеров")
async def delete_numbers(
    telnum: list[str] | None = TelnumsParam,
    principal: Principal = Depends(require("blacklist.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await blacklist.remove(session, principal.domain_id, telnum or [])
    await session.commit()
    return no_content()


@router.get("/blacklist/block-anonymous", response_model=State,
            summary="11.4 Состояние опции блокировки звонков с анонимных номеров")
async def get_block_anonymous(
    principal: Principal = Depends(require("blacklist.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.block_anonymous(runtime, principal.domain_id))


async def _set(session: AsyncSession, principal: Principal, on: bool) -> Response:
    await blacklist.set_block_anonymous(session, principal.domain_id, on)
    await session.commit()
    return no_content()


@router.post("/blacklist/block-anonymous", status_code=204,
             summary="11.4 Включение блокировки звонков с анонимных номеров")
async def block_anonymous_on(
    principal: Principal = Depends(require("blacklist.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _set(session, principal, True)


@router.delete("/blacklist/block-anonymous", status_code=204,
               summary="11.4 Выключение блокировки звонков с анонимных номеров")
async def block_anonymous_off(
    principal: Principal = Depends(require("blacklist.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _set(session, principal, False)
