"""Recordings (call-flows step 9): ``GET /records/{token}``, the history's ``link``.

A call recorded by rtpengine is served from the recording store (``<home>/recordings`` or the S3-compatible
object store of ``VPBX_RECORDING_STORE``, streamed either way); one whose recording failed (disk full, store
down, rtpengine lost) answers 404 "Recording failed: <why>"; a simulated call's is generated. MP3 by default, as
the live platform serves (a real recording's encoded once and kept beside it; a simulated one's encoded as it
streams), WAV with ``format=wav``; a server whose sox cannot encode MP3 serves WAV unless MP3 is asked for.
Without a key the link works while it is valid (signed by this server, not expired); with the
domain's ``X-API-KEY`` it works as long as the call is in the domain's history.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from vpbx.api.auth import api_key_header, check_host, get_runtime, principal_for
from vpbx.api.errors import ERROR_RESPONSES, ApiError
from vpbx.api.routing import Route
from vpbx.engine import records
from vpbx.runtime import Runtime
from vpbx.services import audio
from vpbx.store.repositories import calls as calls_repo
from vpbx.telephony.media.objectstore import ObjectStoreError
from vpbx.telephony.media.recordings import RecordingStore, Stored

log = logging.getLogger("vpbx.media")
router = APIRouter(tags=["Recordings"], responses=ERROR_RESPONSES, route_class=Route)

_STORE = "recording-store"
MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
MP3_KBPS = 24


@router.get("/records/{token}", summary="A call's recording (the history's link)",
            responses={200: {"content": {"audio/mpeg": {}, "audio/wav": {}},
                             "description": "The recording (MP3; WAV with `format=wav`)"},
                       503: {"description": "The recording store cannot be reached: try again later",
                             "headers": {"Retry-After": {"description": "Seconds to wait",
                                                         "schema": {"type": "integer"}}}}})
async def get_record(token: str, request: Request, key: str | None = Depends(api_key_header),
                     runtime: Runtime = Depends(get_runtime),
                     format: Literal["wav", "mp3"] | None = Query(None, description=(
                         "`mp3` (the default, as the live platform serves; 404 when the server has no MP3 "
                         "encoder) or `wav` (8 kHz mono). Not given on a server without an MP3 encoder: WAV"))
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
        duration = await calls_repo.linked_duration(session, parsed.domain_id, parsed.callid)
    if duration is None:
        raise ApiError(404, "Not found")
    try:
        store = _store(runtime)
    except ValueError as exc:  # `vpbx serve` refuses a bad VPBX_RECORDING_STORE; a server built otherwise says so here
        return _unavailable(ObjectStoreError(f"recording store misconfigured: {exc}"))
    try:
        recorded, failure = await run_in_threadpool(_look_up, store, parsed.domain_id, parsed.callid)
    except ObjectStoreError as exc:
        return _unavailable(exc)
    if failure is not None:
        raise ApiError(404, f"Recording failed: {failure}")
    fmt = format or ("mp3" if audio.can_encode_mp3() else "wav")
    if fmt == "mp3" and not audio.can_encode_mp3():
        raise ApiError(404, "MP3 is not available on this server: ask for format=wav")
    headers = {"Content-Disposition": f'inline; filename="{parsed.callid}.{fmt}"',
               "Cache-Control": "private, max-age=3600"}
    if recorded is None:  # a simulated call: its generated recording, streamed (a long call costs no memory)
        if fmt == "mp3":
            return StreamingResponse(iterate_in_threadpool(mp3_stream(records.tone_wav_chunks(duration))),
                                     media_type=MEDIA_TYPES[fmt], headers=headers)
        headers["Content-Length"] = str(44 + 2 * records.wav_frames(duration))
        return StreamingResponse(iterate_in_threadpool(records.tone_wav_chunks(duration)),
                                 media_type=MEDIA_TYPES[fmt], headers=headers)
    try:  # a real call, recorded by rtpengine
        if fmt == "mp3":
            recorded = await run_in_threadpool(store.mp3_of, parsed.domain_id, parsed.callid, recorded)
        if recorded.path is not None:
            return FileResponse(recorded.path, media_type=MEDIA_TYPES[fmt], headers=headers)
        size, chunks = await run_in_threadpool(store.open, recorded)
    except ObjectStoreError as exc:
        return _unavailable(exc)
    except (OSError, audio.AudioError) as exc:
        log.error("recording could not be served", extra={"callid": parsed.callid, "error": str(exc)})
        raise ApiError(404, "Recording failed: MP3 encoding failed") from exc
    headers["Content-Length"] = str(size)
    return StreamingResponse(iterate_in_threadpool(chunks), media_type=MEDIA_TYPES[fmt], headers=headers)


def _store(runtime: Runtime) -> RecordingStore:
    """One store per server (an object store's client is made once and shared by the threads)."""
    store = runtime.extras.get(_STORE)
    if not isinstance(store, RecordingStore):
        store = runtime.extras[_STORE] = RecordingStore.for_settings(runtime.settings)
    return store


def _look_up(store: RecordingStore, domain_id: int, callid: str) -> tuple[Stored | None, str | None]:
    """(the recording, why it failed). The local failure marker first: it is there when the object store was down
    at save time, and answering from it needs no store."""
    failed = store.local_failure(domain_id, callid)
    if failed is not None:
        return None, failed
    recorded = store.find(domain_id, callid)
    return recorded, (store.failure(domain_id, callid) if recorded is None else None)


def _unavailable(exc: ObjectStoreError) -> Response:
    """The store cannot be asked right now: not a failed recording (it may well be there), so 503, not 404."""
    log.warning("recording store unavailable", extra={"error": exc.reason})
    return JSONResponse({"message": f"Recording unavailable: {exc.reason}"}, 503, headers={"Retry-After": "30"})


def mp3_stream(wav_chunks: Iterator[bytes], kbps: int = MP3_KBPS) -> Iterator[bytes]:
    """A WAV stream encoded to MP3 as it flows (sox, stdin to stdout): no file, flat memory. A writer thread
    feeds sox while the caller reads, so neither pipe can fill and block the other."""
    proc = subprocess.Popen([audio.sox_binary(), "-V1", "-t", "wav", "-", "-t", "mp3", "-C", str(kbps), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        try:
            for chunk in wav_chunks:
                stdin.write(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass  # sox ended (or was stopped because the client left)
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    writer = threading.Thread(target=feed, name="mp3-feed", daemon=True)
    writer.start()
    try:
        while block := stdout.read(64 * 1024):
            yield block
    finally:
        if proc.poll() is None:
            proc.kill()
        stdout.close()
        proc.wait()
        writer.join(timeout=5)
