"""002 §12.1 Параметры домена and §12.6 Дополнительные роли."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.errors import ERROR_RESPONSES
from vpbx.api.responses import json_response
from vpbx.runtime import Runtime
from vpbx.schemas.domain import CustomRoleOut, DomainOut
from vpbx.services import tenancy
from vpbx.store.repositories import tenancy as repo

router = APIRouter(tags=["12. Настройки домена"], responses=ERROR_RESPONSES)


@router.get("/domain", response_model=DomainOut, summary="12.1 Параметры домена")
async def domain_params(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    return json_response(await tenancy.domain_params(session, domain, runtime.clock.now()))


@router.get("/access-rights/custom-roles", response_model=list[CustomRoleOut],
            summary="12.6 Дополнительные роли")
async def custom_roles(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    roles = await repo.custom_roles(session, principal.domain_id)
    return json_response([{"id": r.role_id, "name": r.name, "rights": list(r.rights)} for r in roles])
