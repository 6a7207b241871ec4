"""002 §16 Переадресация номера на SIP-адрес (rights ``local_gw.*``, "Номера других операторов")."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.pagination import Page, envelope, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.api.v1.sipregs import path_telnum
from vpbx.runtime import Runtime
from vpbx.schemas.sipuri import SipUriCreate, SipUriList, SipUriOut, SipUriUpdate
from vpbx.services import sipuri, tenancy
from vpbx.store.repositories import trunks as repo

router = section("16. Переадресация номера на SIP-адрес")


@router.get("/sipuri-transfers", response_model=SipUriList, summary="16.1 Список SIP-переадресаций")
async def list_sipuris(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("local_gw.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    rows, total = await repo.list_sipuris(session, principal.domain_id, page)
    return json_response(envelope([sipuri.sipuri_out(r) for r in rows], page, total))


@router.get("/sipuri-transfers/{telnum}", response_model=SipUriOut, summary="16.2 Параметры SIP-переадресации")
async def get_sipuri(
    telnum: str,
    principal: Principal = Depends(require("local_gw.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(sipuri.sipuri_out(await sipuri.get(session, principal.domain_id, path_telnum(telnum))))


@router.post("/sipuri-transfers", response_model=SipUriOut, summary="16.3 Добавление SIP-переадресации")
async def create_sipuri(
    body: SipUriCreate,
    principal: Principal = Depends(require("local_gw.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    t = await sipuri.create(session, domain, body, runtime.clock.now())
    await session.commit()
    return json_response(sipuri.sipuri_out(t))


@router.put("/sipuri-transfers/{telnum}", response_model=SipUriOut, summary="16.4 Редактирование SIP-переадресации")
async def update_sipuri(
    telnum: str,
    body: SipUriUpdate,
    principal: Principal = Depends(require("local_gw.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    t = await sipuri.update(session, principal.domain_id, path_telnum(telnum), body)
    await session.commit()
    return json_response(sipuri.sipuri_out(t))


@router.delete("/sipuri-transfers/{telnum}", status_code=204, summary="16.5 Удаление SIP-переадресации")
async def delete_sipuri(
    telnum: str,
    principal: Principal = Depends(require("local_gw.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await sipuri.delete(session, principal.domain_id, path_telnum(telnum))
    await session.commit()
    return no_content()
