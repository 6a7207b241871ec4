"""002 §5 Исходящий звонок: click-to-call; and (a vpbx extension) which numbers and departments ask the client
for a quality score after the conversation (002 §2.4 ``rating``)."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response
from vpbx.api.v1.section import section
from vpbx.cluster.forward import owner_gate
from vpbx.runtime import Runtime
from vpbx.schemas.calls import MakeCallIn, MakeCallOut, RatingIn, RatingOut
from vpbx.services import calls, ratings

router = section("5. Исходящий звонок")


@router.post("/makecall", response_model=MakeCallOut, summary="5.1 Совершение исходящего звонка",
             dependencies=[Depends(owner_gate)])  # a cluster runs it on the domain's owner
async def make_call(
    body: MakeCallIn,
    principal: Principal = Depends(require("calls.create")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    callid, clid = await calls.make_call(session, runtime, principal.domain_id, user=body.user, group=body.group,
                                         phone=body.phone, clid=body.clid, show_phone=body.show_phone)
    await session.commit()
    return json_response({"callid": callid, "clid": clid})


@router.get("/rating", response_model=RatingOut,
            summary="Оценка качества (vpbx): номера и отделы, которые просят клиента оценить разговор")
async def get_rating(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await ratings.overview(session, principal.domain_id))


@router.put("/rating", response_model=RatingOut,
            summary="Оценка качества (vpbx): задать номера и отделы, которые просят оценку")
async def set_rating(
    body: RatingIn,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await ratings.update(session, principal.domain_id, telnums=body.telnums, groups=body.groups)
    await session.commit()
    return json_response(await ratings.overview(session, principal.domain_id))
