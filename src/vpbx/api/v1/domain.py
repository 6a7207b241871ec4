"""002 §12.1 Параметры домена and §12.6 Дополнительные роли; the CRM integration's settings (a vpbx extension)."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require, require_even_switched_off
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.domain import CustomRoleOut, DomainOut, IntegrationOut, IntegrationUpdate
from vpbx.services import tenancy
from vpbx.store.repositories import tenancy as repo

router = section("12. Настройки домена")


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


@router.get("/integration", response_model=IntegrationOut,
            summary="vpbx extension: настройки интеграции с CRM")
async def get_integration(
    principal: Principal = Depends(require_even_switched_off("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(tenancy.integration_out(await repo.integration(session, principal.domain_id)))


@router.put("/integration", status_code=204,
            summary="vpbx extension: кодировка запросов в CRM и редакция устаревшего API",
            description="Any field may be left out to keep its value. ``enabled: true`` switches the integration "
                        "back on after the PBX switched it off (this operation, with GET, answers even then). "
                        "``legacy_edition`` chooses the legacy "
                        "API's edition (000, or 004 for 001/004): makeCall's answer and the fields of the "
                        "PBX->CRM history and event requests in the legacy dialect.")
async def put_integration(
    body: IntegrationUpdate,
    principal: Principal = Depends(require_even_switched_off("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    await tenancy.set_integration(session, domain, dialect=body.dialect, legacy_edition=body.legacy_edition,
                                  enabled=body.enabled)
    await session.commit()
    return no_content()
