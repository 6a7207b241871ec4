"""Media for the SIP port's calls (issue 17): every call from the network is anchored in rtpengine.

One rtpengine call per A-leg (``ALeg.media``), named with a fresh id: the INVITE is anchored before the engine
names its call, and a transfer continues the caller's audio under the same rtpengine call. Its tags are
logical, not the SIP dialogs' tags: ``caller`` is the A-leg, ``callee`` whoever talks with it now — the fork
that answered, after a transfer the next one, and vpbx itself (a sink socket that drops what it gets) while
the caller hears prompts. The caller's side never changes, so a prompt, a transfer or a party's hold never
re-INVITEs the caller: only the callee side is re-pointed (an answer with the same tags).

The engine says what the caller hears (``prompt``: greeting, menu, voicemail, ...); the caller is answered by
vpbx (200 with rtpengine's SDP) the first time it must hear something, and hears ringback from rtpengine while
it then waits for an employee. Key presses (RFC 4733 from rtpengine's DTMF log, SIP INFO from the port) go to
the engine's ``dtmf``. Recording starts when the talk starts and 12.5 says so (``engine.records_now``); a
voicemail records the caller's message after its prompt. When the call ends, the recording is mixed into the
store under the engine's callid (the history ``link``); a recording that could not be made is stored as a
failure with its reason, which the link answers.

Nothing here can drop a call: when rtpengine is down the SDP passes end to end, prompts are skipped (the call
goes on as the engine routes it) and the recording's failure says why.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpbx.tasks import spawn

if TYPE_CHECKING:
    from vpbx.engine.model import Call
    from vpbx.telephony.media.runtime import MediaRuntime
    from vpbx.telephony.sip.port import ALeg, SipTelephony

log = logging.getLogger("vpbx.sip.media")

CALLER, CALLEE = "caller", "callee"
VOICEMAIL_BEEP_SECONDS = 0.0  # the prompt ends with its own pause; recording starts when it ends
# Prompts heard once; the others (ringback, hold music) repeat until something else is played.
REPEATED = {"ringback": 100, "holdmusic": 100}


@dataclass
class LegMedia:
    """One A-leg's rtpengine call."""

    media_id: str
    anchored: bool = False
    offer_out: str = ""  # rtpengine's SDP for the callee side (what every rung party is offered)
    early: bool = False  # vpbx answered the caller itself (to play it something)
    recording: bool = False
    voicemail: bool = False
    failed: str = ""  # why a recording that was wanted could not be made
    # When recording started, on the wall clock: rtpengine's pcap is stamped with it (not the engine's clock),
    # and the file spans from it to the call's end.
    recorded_from: float = 0.0
    finished: bool = False
    held: bool = False  # the party put the caller on hold: the caller hears hold music
    # Click-to-call (no caller INVITE): vpbx offers the employee's phone rtpengine's side of a call whose other
    # side is the sink until the client answers; ``client_offer`` is what the client's INVITE then carries.
    agent_sdp: str = ""
    client_offer: str = ""
    lock: asyncio.Lock | None = None

    def guard(self) -> asyncio.Lock:
        if self.lock is None:
            self.lock = asyncio.Lock()
        return self.lock


class _Sink(asyncio.DatagramProtocol):
    """Where rtpengine sends the callee side's audio while vpbx itself answers the caller: dropped."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        pass


_HOLD = re.compile(r"^(a=sendonly|a=inactive|c=IN IP4 0\.0\.0\.0)\s*$", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] \S+", re.MULTILINE)
_AUDIO = re.compile(r"^m=audio \d+", re.MULTILINE)


def sink_offer(host: str, port: int) -> str:
    """vpbx's own offer for a click-to-call: G.711 and telephone-events at the sink, which drops the audio."""
    return (f"v=0\r\no=vpbx 1 1 IN IP4 {host}\r\ns=vpbx\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n")


def sink_answer(offer: str, host: str, port: int) -> str:
    """An answer to rtpengine's offer that points its media at the sink: the same codecs (a valid answer to any
    offer), vpbx's address, and none of the offer's ICE or crypto lines."""
    lines = [ln for ln in offer.replace("\r\n", "\n").split("\n")
             if ln and not ln.startswith(("a=candidate", "a=ice-", "a=crypto", "a=fingerprint", "a=setup",
                                          "a=rtcp:", "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"))]
    text = "\r\n".join(lines) + "\r\n"
    text = _CONNECTION.sub(f"c=IN IP4 {host}", text)
    text = _AUDIO.sub(f"m=audio {port}", text, count=1)
    return text + "a=sendrecv\r\n"


class SipMedia:
    def __init__(self, port: SipTelephony, runtime: MediaRuntime) -> None:
        self.port = port
        self.rt = runtime
        self.media = runtime.media
        self.by_id: dict[str, ALeg] = {}
        self.sink: asyncio.DatagramTransport | None = None
        self.sink_address = ("127.0.0.1", 9)

    @classmethod
    async def start(cls, port: SipTelephony) -> SipMedia | None:
        """None when media is off (``--rtpengine off``)."""
        from vpbx.telephony.media.runtime import MediaRuntime

        settings = port.rt.settings
        holder: list[SipMedia] = []

        async def on_digit(media_id: str, tag: str, digit: str) -> None:
            if holder:
                await holder[0].digit_from_rtpengine(media_id, tag, digit)

        runtime = await MediaRuntime.start(settings, on_digit=on_digit)
        if runtime is None:
            return None
        self = cls(port, runtime)
        holder.append(self)
        loop = asyncio.get_running_loop()
        host = settings.rtpengine_interface or "127.0.0.1"
        transport, _ = await loop.create_datagram_endpoint(_Sink, local_addr=(host, 0))
        self.sink = transport
        self.sink_address = transport.get_extra_info("sockname")[:2]
        return self

    async def stop(self) -> None:
        if self.sink is not None:
            self.sink.close()
        await self.rt.stop()

    # --- the call's life ---------------------------------------------------------------------------------

    async def anchor(self, a: ALeg) -> None:
        """The INVITE's offer through rtpengine: what every rung party is offered (else the caller's own SDP)."""
        if a.sdp is None or a.media is not None:
            return
        m = LegMedia(uuid.uuid4().hex)
        a.media = m
        self.by_id[m.media_id] = a
        r = await self.media.offer(m.media_id, CALLER, str(a.sdp))
        m.anchored = r.anchored
        m.offer_out = r.sdp if r.anchored else ""
        if not r.anchored:
            m.failed = f"media unavailable: {r.error}"

    # --- click-to-call: the employee's phone first, then the client through the trunk ----------------------

    async def anchor_click_to_call(self, a: ALeg) -> None:
        """The rtpengine call for a click-to-call: its ``caller`` side is the client's (the sink until then), its
        ``callee`` side the employee's phone, which is offered ``offer_out``."""
        if a.media is not None:
            return
        m = LegMedia(uuid.uuid4().hex)
        a.media = m
        self.by_id[m.media_id] = a
        host, port = self.sink_address
        r = await self.media.offer(m.media_id, CALLER, sink_offer(host, port))
        m.anchored = r.anchored
        m.offer_out = r.sdp if r.anchored else ""

    async def agent_answered(self, a: ALeg, sdp: str) -> None:
        """The employee picked up: the client's INVITE will offer rtpengine's client side; meanwhile the employee
        hears ringback."""
        m = a.media
        if m is None or not m.anchored:
            return
        async with m.guard():
            r = await self.media.answer(m.media_id, CALLER, CALLEE, sdp)
            m.agent_sdp, m.client_offer = sdp, (r.sdp if r.anchored else "")
            if r.anchored:
                path = await self._file(a.domain_id, "ringback", None)
                if path is not None:
                    await self.media.play(m.media_id, CALLEE, path, repeat=REPEATED["ringback"])

    async def client_answered(self, a: ALeg, sdp: str) -> None:
        """The client answered the offer of rtpengine's client side: rtpengine learns the client's address (an
        offer from the client's side, answered with the employee's SDP again: the employee is not re-INVITEd)."""
        from vpbx.telephony.media.rtpengine import MediaError

        m = a.media
        if m is None or not m.anchored or not m.client_offer:
            return
        async with m.guard():
            await self.media.stop_play(m.media_id, CALLEE)
            try:
                await self.media.client.offer(m.media_id, CALLER, sdp)
                await self.media.client.answer(m.media_id, CALLER, CALLEE, m.agent_sdp)
            except MediaError as exc:
                m.failed = f"media lost: {exc}"
                log.warning("click-to-call media not joined", extra={"callid": a.callid, "error": str(exc)})

    async def answer_for_caller(self, a: ALeg, sdp: str) -> str | None:
        """A party answered (or took over after a transfer): rtpengine's callee side now points at it; the SDP
        the caller gets (None: not anchored, the party's own SDP goes end to end)."""
        m = a.media
        if m is None or not m.anchored:
            return None
        async with m.guard():
            if m.early:
                await self.media.stop_play(m.media_id, CALLER)
            r = await self.media.answer(m.media_id, CALLER, CALLEE, sdp)
        return r.sdp if r.anchored else None

    async def _answer_early(self, a: ALeg) -> bool:
        """vpbx answers the caller itself (its prompts need a talking line); True when the caller is answered."""
        m = a.media
        if m is None or not m.anchored or a.ended:
            return False
        if m.early or a.answered:
            return True
        host, port = self.sink_address
        r = await self.media.answer(m.media_id, CALLER, CALLEE, sink_answer(m.offer_out, host, port))
        if not r.anchored or a.answered or a.ended:
            return a.answered
        m.early = True
        self.port.answer_caller(a, r.sdp)
        return True

    def prompt(self, a: ALeg, prompt: str, file: str | None) -> None:
        spawn(self._prompt(a, prompt, file), name="sip-prompt")

    async def _prompt(self, a: ALeg, prompt: str, file: str | None) -> None:
        m = a.media
        if m is None or not m.anchored:
            log.info("prompt not heard: media unavailable", extra={"callid": a.callid, "prompt": prompt})
            return
        async with m.guard():
            if prompt == "ringback" and self.port.talking_fork(a) is not None:
                return  # somebody answered meanwhile
            if not await self._answer_early(a):
                return
            path = await self._file(a.domain_id, prompt, file)
            if path is None:
                return
            repeat = REPEATED.get(prompt)
            played = await self.media.play(m.media_id, CALLER, path, repeat=repeat)
            log.info("prompt played", extra={"callid": a.callid, "prompt": prompt, "ok": played.ok})
            if prompt == "voicemail" and played.ok and not m.voicemail:
                m.voicemail = True
                seconds = float(played.data.get("duration", 0) or 0) / 1000.0
                spawn(self._record_message(a, seconds + VOICEMAIL_BEEP_SECONDS), name="sip-voicemail")

    async def _record_message(self, a: ALeg, after: float) -> None:
        await asyncio.sleep(after)  # the caller hears the prompt whole before the message is recorded
        m = a.media
        if m is None or m.finished or a.ended:
            return
        await self._start_recording(m)

    async def _start_recording(self, m: LegMedia) -> None:
        result = await self.media.record(m.media_id)
        m.recording, m.recorded_from = True, time.time()
        if not result.ok:
            m.failed = f"recording did not start: {result.error}"

    async def answered_elsewhere(self, a: ALeg, callid: str) -> None:
        """A simulated device answered: the caller is answered (the sink on the other side), ringback stops."""
        m = a.media
        if m is None:
            return
        async with m.guard():
            if await self._answer_early(a):
                await self.media.stop_play(m.media_id, CALLER)
        await self.talking(a, callid)

    def ringback(self, a: ALeg) -> None:
        """The caller, already answered by vpbx, waits for an employee: it hears the domain's ringback."""
        m = a.media
        if m is not None and m.early:
            self.prompt(a, "ringback", None)

    async def _file(self, domain_id: int, prompt: str, file: str | None) -> Path | None:
        """A catalogue file (the number's greeting, the domain's ringback or hold music), else the default."""
        from vpbx.services import media as media_service
        from vpbx.store.repositories import settings as settings_repo

        home = self.port.rt.settings.home
        try:
            async with self.port.rt.sessions() as session:
                if file:
                    found = await settings_repo.find_media(session, domain_id, file)
                    if found is not None:
                        return media_service.media_path(home, found)
                if prompt in media_service.MUSIC_TYPES:
                    music = await media_service.music_of(session, domain_id, prompt)
                    if music.media is not None:
                        return media_service.media_path(home, music.media)
            return await asyncio.to_thread(self.rt.prompts.path, prompt)
        except Exception as exc:  # a missing synthesizer or file: the call goes on unprompted
            log.warning("prompt file unavailable", extra={"prompt": prompt, "error": str(exc)})
            return None

    async def talking(self, a: ALeg, callid: str) -> None:
        """The talk started: recorded when 12.5 says so."""
        from vpbx.engine import engine_of

        m = a.media
        if m is None or m.recording or m.voicemail:
            return
        try:
            wanted = await engine_of(self.port.rt).records_now(callid)
        except Exception:
            log.exception("recording decision failed", extra={"callid": callid})
            return
        if not wanted:
            return
        if not m.anchored:
            m.recording, m.failed = True, m.failed or "media unavailable"
            return
        await self._start_recording(m)

    async def finish(self, a: ALeg, call: Call) -> None:
        """The engine's call is over: rtpengine lets it go; a recording is mixed into the store (under the call's
        callid, the history's ``link``), or its failure stored with the reason."""
        m = a.media
        if m is None or m.finished:
            return
        m.finished = True
        self.by_id.pop(m.media_id, None)
        store = self.rt.store
        try:
            if not m.anchored:
                if m.recording or call.voicemail_at is not None:
                    await asyncio.to_thread(store.record_failure, call.domain_id, call.callid,
                                            m.failed or "media unavailable")
                return
            span = (m.recorded_from, time.time()) if m.recorded_from else None
            outcome = await self.media.finish(m.media_id, call.domain_id, name=call.callid, span=span)
            if outcome is None and call.voicemail_at is not None:
                await asyncio.to_thread(store.record_failure, call.domain_id, call.callid,
                                        m.failed or "the caller left no message")
            elif outcome is not None:
                log.info("recording stored" if outcome.ok else "recording failed",
                         extra={"callid": call.callid, "error": outcome.error})
        except Exception:  # the call is over either way; the link answers what the store has
            log.exception("media finish failed", extra={"callid": call.callid})

    async def note_failure(self, domain_id: int, callid: str, why: str) -> None:
        """The link of ``callid`` answers ``Recording failed: <why>``."""
        await asyncio.to_thread(self.rt.store.record_failure, domain_id, callid, why)

    async def release(self, a: ALeg) -> None:
        """The INVITE was refused after it was anchored: rtpengine lets the call go, nothing is stored."""
        m = a.media
        if m is None or m.finished:
            return
        m.finished = True
        self.by_id.pop(m.media_id, None)
        if m.anchored:
            await self.media.finish(m.media_id, a.domain_id)

    # --- re-INVITEs (hold, resume) through rtpengine -------------------------------------------------------

    async def reoffer(self, a: ALeg, from_caller: bool, sdp: str) -> str:
        """A re-INVITE's offer from one side: rtpengine's SDP for the other side (the offer itself when not
        anchored, or when rtpengine refuses: the re-INVITE then goes end to end, as before anchoring)."""
        from vpbx.telephony.media.rtpengine import MediaError

        m = a.media
        if m is None or not m.anchored:
            return sdp
        tags = (CALLER, CALLEE) if from_caller else (CALLEE, CALLER)
        try:
            to_tag: dict[str, Any] = {"to-tag": tags[1]}
            return await self.media.client.offer(m.media_id, tags[0], sdp, **to_tag)
        except MediaError as exc:
            log.warning("re-INVITE not anchored", extra={"callid": a.callid, "error": str(exc)})
            return sdp

    def party_offer(self, a: ALeg, sdp: str) -> None:
        """The party's re-INVITE: on hold (sendonly, inactive, or the old 0.0.0.0) the caller hears the domain's
        hold music (002 §12.2) until the party resumes."""
        m = a.media
        if m is None or not m.anchored:
            return
        held = bool(_HOLD.search(sdp))
        if held and not m.held:
            m.held = True
            self.prompt(a, "holdmusic", None)
        elif not held and m.held:
            m.held = False
            spawn(self._stop_music(a), name="sip-resume")

    async def _stop_music(self, a: ALeg) -> None:
        m = a.media
        if m is not None:
            async with m.guard():
                await self.media.stop_play(m.media_id, CALLER)

    async def reanswer(self, a: ALeg, from_caller: bool, sdp: str) -> str:
        """The answer to a re-INVITE offered by the caller (``from_caller``) or by the party."""
        from vpbx.telephony.media.rtpengine import MediaError

        m = a.media
        if m is None or not m.anchored:
            return sdp
        tags = (CALLER, CALLEE) if from_caller else (CALLEE, CALLER)
        try:
            return await self.media.client.answer(m.media_id, tags[0], tags[1], sdp)
        except MediaError as exc:
            log.warning("re-INVITE answer not anchored", extra={"callid": a.callid, "error": str(exc)})
            return sdp

    # --- key presses -------------------------------------------------------------------------------------

    async def digit_from_rtpengine(self, media_id: str, tag: str, digit: str) -> None:
        if tag != CALLER:  # the employee's keypad drives nothing
            return
        a = self.by_id.get(media_id)
        if a is not None:
            await self.port.digit(a, digit)


_SIGNAL = re.compile(r"^\s*Signal\s*=\s*([0-9*#A-Da-d])", re.MULTILINE | re.IGNORECASE)


def info_digit(content_type: str, body: str) -> str | None:
    """A key press in a SIP INFO: ``application/dtmf-relay`` (``Signal=5``) or ``application/dtmf`` (``5``)."""
    content_type = content_type.lower()
    if "dtmf-relay" in content_type:
        found = _SIGNAL.search(body)
        return found.group(1).upper() if found else None
    if "application/dtmf" in content_type:
        text = body.strip()
        if len(text) == 1 and text.upper() in "0123456789*#ABCD":
            return text.upper()
        if text.isdigit() and 0 <= int(text) <= 15:
            return "0123456789*#ABCD"[int(text)]
    return None
