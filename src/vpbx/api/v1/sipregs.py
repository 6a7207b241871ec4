"""002 §15 SIP-регистрации: trunks to other operators (rights ``local_gw.*``)."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api import reads
from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.errors import validation_error
from vpbx.api.pagination import Page, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.sipregs import SipRegCreate, SipRegList, SipRegOut, SipRegUpdate, check_telnum
from vpbx.secrets_store import SecretBox, box_for
from vpbx.services import sipregs, tenancy

router = section("15. SIP-регистрации")


def get_box(runtime: Runtime = Depends(get_runtime)) -> SecretBox:
    return box_for(runtime.settings)


def path_telnum(telnum: str) -> str:
    """The path's number in any usual form (``+7 926 ...``, ``8926...``), as stored."""
    try:
        return check_telnum(telnum) or telnum
    except ValueError as exc:
        raise validation_error("telnum", str(exc)) from exc


@router.get("/sip-registrations", response_model=SipRegList, summary="15.1 Список SIP-регистраций")
async def list_sipregs(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("local_gw.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.sipregs_list(runtime, principal.domain_id, page))


@router.get("/sip-registrations/{telnum}", response_model=SipRegOut, summary="15.2 Параметры SIP-регистрации")
async def get_sipreg(
    telnum: str,
    principal: Principal = Depends(require("local_gw.get")),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    return json_response(await reads.sipreg_one(runtime, principal.domain_id, path_telnum(telnum)))


@router.post("/sip-registrations", response_model=SipRegOut, summary="15.3 Добавление SIP-регистрации")
async def create_sipreg(
    body: SipRegCreate,
    principal: Principal = Depends(require("local_gw.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    box: SecretBox = Depends(get_box),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    reg = await sipregs.create(session, domain, body, box, runtime.clock.now())
    await session.commit()
    return json_response(sipregs.sipreg_out(reg, runtime.telephony))


@router.put("/sip-registrations/{telnum}", response_model=SipRegOut, summary="15.4 Редактирование SIP-регистрации")
async def update_sipreg(
    telnum: str,
    body: SipRegUpdate,
    principal: Principal = Depends(require("local_gw.edit")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    box: SecretBox = Depends(get_box),
) -> Response:
    reg = await sipregs.update(session, principal.domain_id, path_telnum(telnum), body, box)
    await session.commit()
    return json_response(sipregs.sipreg_out(reg, runtime.telephony))


@router.delete("/sip-registrations/{telnum}", status_code=204, summary="15.5 Удаление SIP-регистрации")
async def delete_sipreg(
    telnum: str,
    principal: Principal = Depends(require("local_gw.delete")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    await sipregs.delete(session, principal.domain_id, path_telnum(telnum), runtime.telephony)
    await session.commit()
    return no_content()
