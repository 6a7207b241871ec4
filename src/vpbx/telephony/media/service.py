"""What the SIP port calls for media: anchor a call's SDP in rtpengine, play prompts, record.

Nothing here can drop a call. Every method answers a result: when rtpengine is down (or refuses),
:meth:`Media.offer`/:meth:`Media.answer` give back the SDP they were given (``anchored=False``: media flows end
to end, as before part 2) and say why; ``play``/``record`` answer ``ok=False`` with the reason, so the caller
follows the documented fallback (no greeting heard, history without a link).

The interface for the SIP wiring (one rtpengine call per engine call: ``callid`` is the engine's callid, used as
rtpengine's call-id and the recording's name, not the SIP Call-ID; tags = the SIP dialogs' tags)::

    media = Media(client, recording_dir=..., store=RecordingStore(home))
    r = await media.offer(callid, from_tag, sdp, record=True)   # INVITE from the caller -> r.sdp to the callee
    r = await media.answer(callid, from_tag, to_tag, sdp)       # 200 OK from the callee -> r.sdp to the caller
    await media.play(callid, from_tag, prompt_path)            # the party of from_tag hears the file
    await media.record(callid)                                  # start recording mid-call (12.5 turned on)
    outcome = await media.finish(callid, domain_id)             # BYE: delete, mix the recording into the store
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpbx.telephony.media.recordings import Outcome, RecordingStore, find_metadata
from vpbx.telephony.media.rtpengine import MediaError, NgClient

log = logging.getLogger("vpbx.media")


@dataclass(frozen=True)
class SdpResult:
    sdp: str
    anchored: bool
    error: str = ""


@dataclass(frozen=True)
class Result:
    ok: bool
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Call:
    recording: bool = False
    anchored: bool = False
    failed: str = ""  # why media was lost mid-call, if it was


class Media:
    def __init__(self, client: NgClient, *, recording_dir: Path | None = None,
                 store: RecordingStore | None = None) -> None:
        self.client = client
        self.recording_dir = recording_dir
        self.store = store
        self.calls: dict[str, _Call] = {}

    async def available(self) -> bool:
        try:
            return await self.client.ping()
        except MediaError:
            return False

    async def offer(self, callid: str, from_tag: str, sdp: str, *, record: bool = False) -> SdpResult:
        call = self.calls.setdefault(callid, _Call())
        call.recording = call.recording or record  # wanted: if it cannot be, finish() reports the failure
        try:
            out = await self.client.offer(callid, from_tag, sdp, record=record)
        except MediaError as exc:
            call.failed = str(exc)
            log.warning("media unavailable: call not anchored", extra={"callid": callid, "error": str(exc)})
            return SdpResult(sdp, False, str(exc))
        call.anchored = True
        return SdpResult(out, True)

    async def answer(self, callid: str, from_tag: str, to_tag: str, sdp: str) -> SdpResult:
        call = self.calls.setdefault(callid, _Call())
        if not call.anchored:  # the offer went end to end: the answer must too
            return SdpResult(sdp, False, call.failed or "offer not anchored")
        try:
            return SdpResult(await self.client.answer(callid, from_tag, to_tag, sdp), True)
        except MediaError as exc:
            call.failed = str(exc)
            log.warning("media unavailable at answer", extra={"callid": callid, "error": str(exc)})
            return SdpResult(sdp, False, str(exc))

    async def _do(self, what: str, callid: str, coro: Any) -> Result:
        try:
            return Result(True, data=await coro)
        except MediaError as exc:
            call = self.calls.get(callid)
            if call is not None:
                call.failed = str(exc)
            log.warning("media command failed", extra={"callid": callid, "command": what, "error": str(exc)})
            return Result(False, str(exc))

    async def play(self, callid: str, to_tag: str, file: Path, *, repeat: int | None = None) -> Result:
        """``to_tag``'s party hears ``file`` (rtpengine plays to the party of the tag it is given)."""
        return await self._do("play media", callid,
                              self.client.play_media(callid, to_tag, str(file), repeat_times=repeat))

    async def stop_play(self, callid: str, to_tag: str) -> Result:
        return await self._do("stop media", callid, self.client.stop_media(callid, to_tag))

    async def record(self, callid: str) -> Result:
        result = await self._do("start recording", callid, self.client.start_recording(callid))
        if result.ok:
            self.calls.setdefault(callid, _Call()).recording = True
        return result

    async def stats(self, callid: str) -> Result:
        return await self._do("query", callid, self.client.query(callid))

    async def finish(self, callid: str, domain_id: int, *, within: float = 5.0, name: str | None = None,
                     span: tuple[float, float] | None = None) -> Outcome | None:
        """End the call in rtpengine; when it was recorded, mix its recording into the store (under ``name``,
        the engine's callid, when rtpengine's call-id is another).

        None: not recorded. An ``Outcome`` with ``ok=False``: recording failed (rtpengine lost mid-call,
        disk full, ...) — the call itself already ended normally; history says so by carrying no link."""
        call = self.calls.pop(callid, _Call())
        if call.anchored:
            deleted = await self._do("delete", callid, self.client.delete(callid))
            if not deleted.ok:
                call.failed = call.failed or deleted.error
        if not call.recording:
            return None
        if self.store is None or self.recording_dir is None:
            return Outcome(False, error="no recording store configured")
        if call.failed:
            return await asyncio.to_thread(self.store.record_failure, domain_id, name or callid,
                                           f"media lost: {call.failed}")
        # rtpengine writes the metadata file when the call is closed: wait for it (bounded).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        recording_dir, store = self.recording_dir, self.store
        pause = 0.02
        while not find_metadata(recording_dir, callid):
            if loop.time() > deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)  # usually there at the first look; a slow disk is not polled hard
        return await asyncio.to_thread(functools.partial(store.save_from_rtpengine, domain_id, name or callid,
                                                         recording_dir, callid, span=span))
