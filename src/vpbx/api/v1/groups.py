"""002 §8 Отделы: departments and their members."""

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
from vpbx.schemas.groups import GroupCreate, GroupList, GroupOut, GroupUpdate, MembersChange
from vpbx.services import groups, tenancy

router = section("8. Отделы")


@router.get("/groups", response_model=GroupList, summary="8.1 Список отделов")
async def list_groups(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("groups.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.groups_list(runtime, principal.domain_id, page))


@router.get("/groups/{groupId}", response_model=GroupOut, summary="8.2 Получение отдела")
async def get_group(
    groupId: str,
    principal: Principal = Depends(require("groups.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.group_one(runtime, principal.domain_id, groupId))


@router.post("/groups", response_model=GroupOut, summary="8.3 Добавление отдела")
async def create_group(
    body: GroupCreate,
    principal: Principal = Depends(require("groups.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    group = await groups.create(session, domain, body, runtime.clock.now())
    out = (await groups.render(session, [group]))[0]
    await session.commit()
    return json_response(out)


@router.put("/groups/{groupId}", response_model=GroupOut, summary="8.4 Редактирование отдела")
async def update_group(
    groupId: str,
    body: GroupUpdate,
    principal: Principal = Depends(require("groups.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    group = await groups.update(session, principal.domain_id, groupId, body)
    out = (await groups.render(session, [group]))[0]
    await session.commit()
    return json_response(out)


@router.delete("/groups/{groupId}", status_code=204, summary="8.5 Удаление отдела")
async def delete_group(
    groupId: str,
    principal: Principal = Depends(require("groups.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await groups.delete(session, principal.domain_id, groupId)
    await session.commit()
    return no_content()


@router.post("/groups/{groupId}/users", status_code=204, summary="8.6 Изменение сотрудников в отделе")
async def change_members(
    groupId: str,
    body: MembersChange,
    principal: Principal = Depends(require("groups.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await groups.change_members(session, principal.domain_id, groupId, body)
    await session.commit()
    return no_content()
