"""002 §17 Подключение других АТС (rights ``branches.*``)."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.pagination import Page, envelope, page_params
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.api.v1.sipregs import get_box
from vpbx.notify.ssrf import allow_private
from vpbx.runtime import Runtime
from vpbx.schemas.branches import BranchCreate, BranchList, BranchOut, BranchUpdate
from vpbx.secrets_store import SecretBox
from vpbx.services import branches, tenancy
from vpbx.store.repositories import trunks as repo

router = section("17. Подключение других АТС")


@router.get("/branches", response_model=BranchList, summary="17.1 Список подключений")
async def list_branches(
    page: Page = Depends(page_params),
    principal: Principal = Depends(require("branches.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    rows, total = await repo.list_branches(session, principal.domain_id, page)
    return json_response(envelope([branches.branch_out(b) for b in rows], page, total))


@router.get("/branches/{domain}", response_model=BranchOut, summary="17.2 Настройки подключения")
async def get_branch(
    domain: str,
    principal: Principal = Depends(require("branches.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(branches.branch_out(await branches.get(session, principal.domain_id, domain)))


@router.post("/branches", response_model=BranchOut, summary="17.3 Добавление подключения")
async def create_branch(
    body: BranchCreate,
    principal: Principal = Depends(require("branches.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    box: SecretBox = Depends(get_box),
) -> Response:
    domain = await tenancy.get_domain(session, principal.domain_name)
    b = await branches.create(session, domain, body, box, runtime.clock.now())
    await session.commit()
    return json_response(branches.branch_out(b))


@router.put("/branches/{domain}", response_model=BranchOut, summary="17.4 Редактирование подключение")
async def update_branch(
    domain: str,
    body: BranchUpdate,
    principal: Principal = Depends(require("branches.edit")),
    session: AsyncSession = Depends(get_session),
    box: SecretBox = Depends(get_box),
) -> Response:
    own = await tenancy.get_domain(session, principal.domain_name)
    b = await branches.update(session, own, domain, body, box)
    await session.commit()
    return json_response(branches.branch_out(b))


@router.post("/branches/{domain}/sync", response_model=BranchOut, summary="17.5 Синхронизация подключения")
async def sync_branch(
    domain: str,
    principal: Principal = Depends(require("branches.edit")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    box: SecretBox = Depends(get_box),
) -> Response:
    """Reads the other PBX's employees and departments now, and answers the outcome: ``success`` with
    the counts, or a failure status (``invalid_key``, ``forbidden``, ``unreachable``, ``error``) and
    its reason in ``error``."""
    target = branches.target(await branches.get(session, principal.domain_id, domain), box)
    await session.rollback()  # hold no transaction while the other PBX answers (it may be this server)
    result = await branches.fetch_directory(target, private_ok=allow_private(runtime.settings))
    b = await branches.apply(session, principal.domain_id, target.remote_domain, result, runtime.clock.now())
    await session.commit()
    return json_response(branches.branch_out(b))


@router.delete("/branches/{domain}", status_code=204, summary="17.6 Удаление подключения")
async def delete_branch(
    domain: str,
    principal: Principal = Depends(require("branches.delete")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await branches.delete(session, principal.domain_id, domain)
    await session.commit()
    return no_content()
