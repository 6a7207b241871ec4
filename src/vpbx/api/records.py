"""Recordings (call-flows step 9): ``GET /records/{token}``, the history's ``link``.

Without a key the link works while it is valid (signed by this server, not expired); with the
domain's ``X-API-KEY`` it works as long as the call is in the domain's history.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from vpbx.api.auth import api_key_header, check_host, get_runtime, principal_for
from vpbx.api.errors import ERROR_RESPONSES, ApiError
from vpbx.engine import records
from vpbx.runtime import Runtime
from vpbx.store.tables import CallRecord, InnerCallRecord

router = APIRouter(tags=["Recordings"], responses=ERROR_RESPONSES)


@router.get("/records/{token}", summary="A call's recording (the history's link)",
            responses={200: {"content": {"audio/wav": {}}, "description": "The recording (WAV)"}})
async def get_record(token: str, request: Request, key: str | None = Depends(api_key_header),
                     runtime: Runtime = Depends(get_runtime)) -> Response:
    parsed = records.parse(runtime, token)
    if parsed is None:
        raise ApiError(404, "Not found")
    if key:
        principal = await principal_for(runtime, key)
        await check_host(runtime, principal, request.headers.get("host", ""))
        if principal.domain_id != parsed.domain_id:
            raise ApiError(404, "Not found")
    elif parsed.expired(runtime.clock.now()):
        raise ApiError(403, "The link has expired: ask with the domain's X-API-KEY")
    async with runtime.sessions() as session:
        duration = None
        for table in (CallRecord, InnerCallRecord):
            duration = await session.scalar(select(table.duration).where(
                table.domain_id == parsed.domain_id, table.callid == parsed.callid, table.link != "").limit(1))
            if duration is not None:
                break
    if duration is None:
        raise ApiError(404, "Not found")
    return Response(records.tone_wav(duration), media_type="audio/wav",
                    headers={"Content-Disposition": f'inline; filename="{parsed.callid}.wav"',
                             "Cache-Control": "private, max-age=3600"})
