"""002 §14 Ограничение звонков: directions allowed to everyone, to employees and to departments."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, require
from vpbx.api.deps import get_session
from vpbx.api.errors import validation_error
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.schemas.restrictions import ALLOWED_DESCRIPTION, AllowedIn, GroupRulesIn, RestrictionsOut, UserRulesIn
from vpbx.services import restrictions
from vpbx.services.settings import split_names

router = section("14. Ограничение звонков")
AllowedParam = Query(None, description=ALLOWED_DESCRIPTION + "; repeat for several (a JSON body "
                                                             "`{\"allowed\": [...]}` is accepted too)")


async def _allowed(request: Request, allowed: list[str] | None) -> list[str]:
    """DELETE's ``allowed``: from the query (``?allowed=RU&allowed=CIS`` or ``?allowed=RU,CIS``) or a JSON body."""
    codes = split_names(allowed)
    if not codes:
        raw = await request.body()
        body: Any = None
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
        if isinstance(body, dict):
            body = body.get("allowed")
        if isinstance(body, list) and all(isinstance(c, str) for c in body):
            codes = body
    if not codes:
        raise validation_error("allowed", "give the directions to remove")
    return codes


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


@router.get("/calls-restrictions", response_model=RestrictionsOut, summary="14.1 Настройки ограничения звонков")
async def overview(
    principal: Principal = Depends(require("restrictions.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await restrictions.overview(session, principal.domain_id))


@router.post("/calls-restrictions/main", status_code=204, summary="14.2 Добавить разрешенное направление для всех")
async def add_main(
    body: AllowedIn,
    principal: Principal = Depends(require("restrictions.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.add_main(session, principal.domain_id, body.allowed)
    await session.commit()
    return no_content()


@router.delete("/calls-restrictions/main", status_code=204, summary="14.2 Убрать разрешенное направление для всех")
async def remove_main(
    request: Request,
    allowed: list[str] | None = AllowedParam,
    principal: Principal = Depends(require("restrictions.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.remove_main(session, principal.domain_id, await _allowed(request, allowed))
    await session.commit()
    return no_content()


@router.post("/calls-restrictions/users", status_code=204,
             summary="14.3 Добавить разрешенное направление для сотрудников")
async def add_users(
    body: list[UserRulesIn] | UserRulesIn = Body(...),
    principal: Principal = Depends(require("restrictions.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.add_users(session, principal.domain_id, [(i.login, i.allowed) for i in _items(body)])
    await session.commit()
    return no_content()


@router.delete("/calls-restrictions/users/{login}", status_code=204,
               summary="14.3 Убрать разрешенное направление для сотрудника")
async def remove_user(
    login: str,
    request: Request,
    allowed: list[str] | None = AllowedParam,
    principal: Principal = Depends(require("restrictions.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.remove_user(session, principal.domain_id, login, await _allowed(request, allowed))
    await session.commit()
    return no_content()


@router.post("/calls-restrictions/groups", status_code=204,
             summary="14.4 Добавить разрешенное направление для отдела",
             description="Each item names the department by `id` (002's example sends it as `login`: accepted too).")
async def add_groups(
    body: list[GroupRulesIn] | GroupRulesIn = Body(...),
    principal: Principal = Depends(require("restrictions.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.add_groups(session, principal.domain_id, [(i.id, i.allowed) for i in _items(body)])
    await session.commit()
    return no_content()


@router.delete("/calls-restrictions/groups/{id}", status_code=204,
               summary="14.4 Убрать разрешенное направление для отдела")
async def remove_group(
    id: str,
    request: Request,
    allowed: list[str] | None = AllowedParam,
    principal: Principal = Depends(require("restrictions.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await restrictions.remove_group(session, principal.domain_id, id, await _allowed(request, allowed))
    await session.commit()
    return no_content()
