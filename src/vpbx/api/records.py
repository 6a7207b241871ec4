"""Recordings (call-flows step 9): ``GET /records/{token}``, the history's ``link``.

A call recorded by rtpengine is served from the recording store (``<home>/recordings``); one whose recording
failed (disk full, rtpengine lost) answers 404 "Recording failed: <why>"; a simulated call's is generated.
Without a key the link works while it is valid (signed by this server, not expired); with the
domain's ``X-API-KEY`` it works as long as the call is in the domain's history.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from vpbx.api.auth import api_key_header, check_host, get_runtime, principal_for
from vpbx.api.errors import ERROR_RESPONSES, ApiError
from vpbx.engine import records
from vpbx.runtime import Runtime
from vpbx.services import audio
from vpbx.store.tables import CallRecord, InnerCallRecord
from vpbx.telephony.media.recordings import RecordingStore

router = APIRouter(tags=["Recordings"], responses=ERROR_RESPONSES)


@router.get("/records/{token}", summary="A call's recording (the history's link)",
            responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}},
                             "description": "The recording (WAV; MP3 with `format=mp3`)"}})
async def get_record(token: str, request: Request, key: str | None = Depends(api_key_header),
                     runtime: Runtime = Depends(get_runtime),
                     format: Literal["wav", "mp3"] = Query("wav", description=(
                         "`mp3` (as the live platform serves) when the server has an MP3 encoder, else 404"))
                     ) -> Response:
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
    headers = {"Content-Disposition": f'inline; filename="{parsed.callid}.{format}"',
               "Cache-Control": "private, max-age=3600"}
    store = RecordingStore(runtime.settings.home)
    recorded = store.find(parsed.domain_id, parsed.callid)
    failure = store.failure(parsed.domain_id, parsed.callid) if recorded is None else None
    if failure is not None:
        raise ApiError(404, f"Recording failed: {failure}")
    if format == "mp3":
        mp3, temporary = await run_in_threadpool(_mp3_of, store, parsed.domain_id, parsed.callid, recorded, duration)
        return FileResponse(mp3, media_type="audio/mpeg", headers=headers,
                            background=BackgroundTask(_unlink, mp3) if temporary else None)
    if recorded is not None:  # a real call, recorded by rtpengine
        return FileResponse(recorded, media_type="audio/wav", headers=headers)
    # A simulated call: its generated recording, streamed (a long call costs no memory).
    headers["Content-Length"] = str(44 + 2 * records.wav_frames(duration))
    return StreamingResponse(iterate_in_threadpool(records.tone_wav_chunks(duration)), media_type="audio/wav",
                             headers=headers)


def _mp3_of(store: RecordingStore, domain_id: int, callid: str, recorded: Path | None,
            duration: float) -> tuple[Path, bool]:
    """(the recording as MP3, whether it is a temporary file). A real recording's is encoded once and kept beside
    its WAV (the retention removes both); a simulated call's is encoded per request and not kept."""
    if not audio.can_encode_mp3():
        raise ApiError(404, "MP3 is not available on this server: ask for format=wav")
    try:
        if recorded is not None:
            mp3 = recorded.with_suffix(".mp3")
            if not mp3.is_file():
                audio.wav_to_mp3(recorded, mp3)
            return mp3, False
        fd, name = tempfile.mkstemp(prefix="vpbx-sim-record-", suffix=".mp3")
        os.close(fd)
        mp3 = Path(name)
        try:
            with tempfile.TemporaryDirectory(prefix="vpbx-sim-record-") as tmp:
                wav = Path(tmp) / "sim.wav"
                with wav.open("wb") as f:
                    for chunk in records.tone_wav_chunks(duration):
                        f.write(chunk)
                audio.wav_to_mp3(wav, mp3)
        except BaseException:
            mp3.unlink(missing_ok=True)
            raise
        return mp3, True
    except (OSError, audio.AudioError) as exc:
        raise ApiError(404, "Recording failed: MP3 encoding failed") from exc


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
