"""002 §6 Сотрудники: employees, their departments, subscriptions and DND."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api import reads
from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.pagination import Page, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.common import State
from vpbx.schemas.users import UserCreate, UserGroup, UserList, UserOut, UserUpdate
from vpbx.services import tenancy, users

router = section("6. Сотрудники")
WithParam = Query(None, alias="with", description="`status`: add each employee's registration status")
GroupIdParam = Query(None, description="Department id; without it, every department")


def _status(runtime: Runtime, principal: Principal, login: str, with_: str | None) -> str | None:
    if with_ != "status":
        return None
    return "online" if runtime.telephony.is_registered(principal.domain_id, login) else "offline"


@router.get("/users", response_model=UserList, summary="6.1 Список сотрудников")
async def list_users(
    with_: Literal["status"] | None = WithParam,
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("users.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.users_list(runtime, principal.domain_id, page, with_))


@router.get("/users/{login}", response_model=UserOut, summary="6.2 Получение сотрудника")
async def get_user(
    login: str,
    with_: Literal["status"] | None = WithParam,
    principal: Principal = Depends(require("users.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.user_one(runtime, principal.domain_id, login, with_))


@router.post("/users", response_model=UserOut, summary="6.3 Добавление сотрудника")
async def create_user(
    body: UserCreate,
    principal: Principal = Depends(require("users.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    user = await users.create(session, domain, body, runtime.clock.now())
    await session.commit()
    return json_response(users.user_out(user))


@router.put("/users/{login}", response_model=UserOut, summary="6.4 Редактирование сотрудника")
async def update_user(
    login: str,
    body: UserUpdate,
    principal: Principal = Depends(require("users.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    user = await users.update(session, principal.domain_id, login, body)
    await session.commit()
    return json_response(users.user_out(user))


@router.delete("/users/{login}", status_code=204, summary="6.5 Удаление сотрудника")
async def delete_user(
    login: str,
    principal: Principal = Depends(require("users.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await users.delete(session, principal.domain_id, login)
    await session.commit()
    return no_content()


@router.get("/users/{login}/groups", response_model=list[UserGroup], summary="6.6 Список отделов сотрудника")
async def user_groups(
    login: str,
    principal: Principal = Depends(require("users.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await users.groups(session, principal.domain_id, login))


@router.get("/users/{login}/subscription", response_model=State,
            summary="6.7 Статус приема звонков в отделе")
async def get_subscription(
    login: str,
    group_id: str | None = GroupIdParam,
    principal: Principal = Depends(require("users.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response({"state": await users.subscription(session, principal.domain_id, login, group_id)})


async def _subscribe(session: AsyncSession, principal: Principal, login: str, group_id: str | None,
                     on: bool) -> Response:
    await users.set_subscription(session, principal.domain_id, login, group_id, on)
    await session.commit()
    return no_content()


@router.post("/users/{login}/subscription", status_code=204,
             summary="6.7/6.8 Включение приема звонков в отделе (во всех отделах без group_id)")
async def subscribe(
    login: str,
    group_id: str | None = GroupIdParam,
    principal: Principal = Depends(require("users.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _subscribe(session, principal, login, group_id, True)


@router.delete("/users/{login}/subscription", status_code=204,
               summary="6.7/6.8 Выключение приема звонков в отделе (во всех отделах без group_id)")
async def unsubscribe(
    login: str,
    group_id: str | None = GroupIdParam,
    principal: Principal = Depends(require("users.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _subscribe(session, principal, login, group_id, False)


@router.get("/users/{login}/dnd", response_model=State, summary="6.9 Статус режима do not disturb")
async def get_dnd(
    login: str,
    principal: Principal = Depends(require("users.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    user = await users.get(session, principal.domain_id, login)
    return json_response({"state": user.dnd})


async def _dnd(session: AsyncSession, principal: Principal, login: str, on: bool) -> Response:
    await users.set_dnd(session, principal.domain_id, login, on)
    await session.commit()
    return no_content()


@router.post("/users/{login}/dnd", status_code=204, summary="6.9 Включение режима do not disturb")
async def dnd_on(
    login: str,
    principal: Principal = Depends(require("users.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _dnd(session, principal, login, True)


@router.delete("/users/{login}/dnd", status_code=204, summary="6.9 Выключение режима do not disturb")
async def dnd_off(
    login: str,
    principal: Principal = Depends(require("users.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return await _dnd(session, principal, login, False)
