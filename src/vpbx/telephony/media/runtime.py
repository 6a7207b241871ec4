"""Media for a running vpbx, from its settings: the one object the SIP port holds.

``VPBX_RTPENGINE`` (``--rtpengine``) chooses: empty → vpbx starts and supervises its own rtpengine
(:mod:`.supervisor`); ``host:port`` → the operator's (vpbx pings it at start and reads its recordings from
``VPBX_RTPENGINE_RECORDINGS``); ``off`` → no media (calls connect end to end, unrecorded, no prompts).
An rtpengine that cannot start (not installed, crashed) leaves vpbx running: every call then gets
"media unavailable" from :class:`~.service.Media` and goes on unanchored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from vpbx.settings import Settings
from vpbx.telephony.media.dtmf import DtmfListener, OnDigit
from vpbx.telephony.media.prompts import Prompts
from vpbx.telephony.media.recordings import RecordingStore, purge_orphans
from vpbx.telephony.media.rtpengine import MediaError, NgClient, parse_address
from vpbx.telephony.media.service import Media
from vpbx.telephony.media.supervisor import RtpengineConfig, RtpengineMissing, RtpengineSupervisor

log = logging.getLogger("vpbx.media")

PURGE_EVERY = 3600.0


@dataclass
class MediaRuntime:
    media: Media
    prompts: Prompts
    store: RecordingStore
    supervisor: RtpengineSupervisor | None = None
    keypad: DtmfListener | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, on_digit: OnDigit | None = None) -> MediaRuntime | None:
        """None when media is off (``rtpengine = off``). ``on_digit(callid, tag, digit)``: key presses rtpengine
        hears (RFC 4733), for the engine's ``dtmf``."""
        mode = settings.rtpengine.strip()
        if mode.lower() == "off":
            return None
        keypad: DtmfListener | None = None
        if on_digit is not None:
            dtmf_host, dtmf_port = parse_address(settings.rtpengine_dtmf, 0) if settings.rtpengine_dtmf \
                else ("127.0.0.1", 0)
            keypad = await DtmfListener.open(on_digit, dtmf_host, dtmf_port)
        store = RecordingStore.for_settings(settings)
        prompts = Prompts(settings.home)
        supervisor: RtpengineSupervisor | None = None
        if mode:
            host, port = parse_address(mode)
            client = NgClient(host, port)
            recording_dir = settings.rtpengine_recordings
        else:
            supervisor = RtpengineSupervisor(RtpengineConfig(
                home=settings.home / "rtpengine", interface=settings.rtpengine_interface,
                port_min=settings.rtpengine_port_min, port_max=settings.rtpengine_port_max,
                dtmf_log_dest="{}:{}".format(*keypad.address) if keypad is not None else ""))
            try:
                await supervisor.start()
            except (RtpengineMissing, MediaError, OSError) as exc:
                log.error("rtpengine did not start: calls will connect without media anchoring",
                          extra={"error": str(exc)})
            host, port = supervisor.address
            client = _SupervisedClient(supervisor)
            recording_dir = supervisor.config.recording_dir
        runtime = cls(Media(client, recording_dir=recording_dir, store=store), prompts, store, supervisor, keypad)
        if not await runtime.media.available():
            log.warning("rtpengine does not answer: media unavailable until it does",
                        extra={"rtpengine": client.address})
        runtime._tasks.append(asyncio.create_task(runtime._purge_loop(), name="recordings-retention"))
        return runtime

    async def _purge_loop(self) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.store.purge)
                if self.media.recording_dir is not None:
                    removed += await asyncio.to_thread(purge_orphans, self.media.recording_dir)
                if removed:
                    log.info("recordings past retention removed", extra={"count": removed})
            except Exception:  # the purge never ends media; it tries again next round
                log.exception("recording retention purge failed")
            await asyncio.sleep(PURGE_EVERY)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.media.client.close()
        if self.supervisor is not None:
            await self.supervisor.stop()
        if self.keypad is not None:
            self.keypad.close()


class _SupervisedClient(NgClient):
    """A client that follows the supervisor's port (it changes when rtpengine is restarted)."""

    def __init__(self, supervisor: RtpengineSupervisor) -> None:
        host, port = supervisor.address
        super().__init__(host, port)
        self.supervisor = supervisor

    async def _ensure(self) -> asyncio.DatagramTransport:
        host, port = self.supervisor.address
        if (host, port) != (self.host, self.port):
            self.host, self.port = host, port
            if self._transport is not None:
                self._transport.close()
                self._transport = None
        return await super()._ensure()
