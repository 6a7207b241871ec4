"""Media through a real rtpengine (Debian rtpengine-daemon, userspace), started by vpbx's supervisor: audio is
verified by its spectrum, not assumed."""

from __future__ import annotations

import asyncio
import os
import shutil
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from tests.media.rtp import Phone, media_port, peaks, rms, sdp, stream, telephone_event, tone

from vpbx.telephony.media.dtmf import DtmfListener
from vpbx.telephony.media.prompts import Prompts
from vpbx.telephony.media.recordings import RecordingStore
from vpbx.telephony.media.rtpengine import MediaUnavailable, NgClient, RtpengineError
from vpbx.telephony.media.service import Media
from vpbx.telephony.media.supervisor import RtpengineConfig, RtpengineSupervisor, free_udp_port

pytestmark = pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine-daemon is not installed")


async def until(check: Callable[[], Awaitable[bool] | bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def keypad() -> AsyncIterator[tuple[DtmfListener, list[tuple[str, str, str]]]]:
    pressed: list[tuple[str, str, str]] = []
    listener = await DtmfListener.open(lambda callid, tag, digit: pressed.append((callid, tag, digit)))
    yield listener, pressed
    listener.close()


@pytest.fixture
async def engine(tmp_path: Path, keypad: tuple[DtmfListener, list[tuple[str, str, str]]]
                 ) -> AsyncIterator[RtpengineSupervisor]:
    # A port range per test process (xdist): rtpengine binds media ports in it.
    base = 30000 + (os.getpid() % 200) * 50
    host, port = keypad[0].address
    sup = RtpengineSupervisor(RtpengineConfig(home=tmp_path / "rtpengine", port_min=base, port_max=base + 49,
                                              dtmf_log_dest=f"{host}:{port}"))
    await sup.start()
    yield sup
    await sup.stop()


@pytest.fixture
async def media(engine: RtpengineSupervisor, tmp_path: Path) -> AsyncIterator[Media]:
    client = engine.client(timeout=0.5, retries=1)
    yield Media(client, recording_dir=engine.config.recording_dir, store=RecordingStore(tmp_path / "home"))
    await client.close()


async def connect(media: Media, callid: str, *, record: bool = False) -> tuple[Phone, Phone, int, int]:
    """Caller ``a`` offers, callee ``b`` answers; returns the phones and the rtpengine port each sends to."""
    a, b = await Phone.open(1111), await Phone.open(2222)
    offer = await media.offer(callid, "tag-a", sdp(a.port, 1), record=record)
    assert offer.anchored, offer.error
    answer = await media.answer(callid, "tag-a", "tag-b", sdp(b.port, 2))
    assert answer.anchored, answer.error
    # b learns rtpengine's address from the offer, a from the answer.
    return a, b, media_port(answer.sdp), media_port(offer.sdp)


async def test_a_tone_crosses_rtpengine_both_ways(media: Media) -> None:
    assert await media.available()
    a, b, to_a_side, to_b_side = await connect(media, "tone1")
    try:
        await stream([(a, to_a_side, tone(440, 2.0)), (b, to_b_side, tone(880, 2.0))])
        await until(lambda: len(b.received) >= 95 and len(a.received) >= 95)
        heard_by_b, heard_by_a = b.audio(), a.audio()
        assert abs(peaks(heard_by_b)[0] - 440) <= 2
        assert abs(peaks(heard_by_a)[0] - 880) <= 2
        stats = await media.stats("tone1")
        assert stats.ok and stats.data["totals"]["RTP"]["packets"] >= 190
    finally:
        a.close()
        b.close()
        await media.finish("tone1", 1)


async def test_a_recording_holds_both_parties_and_lasts_the_talk(media: Media) -> None:
    a, b, to_a_side, to_b_side = await connect(media, "rec1", record=True)
    try:
        await stream([(a, to_a_side, tone(440, 3.0)), (b, to_b_side, tone(880, 3.0))])
        await until(lambda: len(b.received) >= 145)
    finally:
        a.close()
        b.close()
    outcome = await media.finish("rec1", 7)
    assert outcome is not None and outcome.ok, outcome
    assert outcome.path == media.store.path(7, "rec1") if media.store else False
    with wave.open(str(outcome.path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        seconds = w.getnframes() / 8000
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert abs(seconds - 3.0) < 1.0
    assert sorted(round(p) for p in peaks(samples, 2)) == [440, 880]
    # rtpengine's own files are gone once mixed into the store.
    assert not list((media.recording_dir or Path("/nonexistent")).glob("metadata/*rec1*"))


async def test_a_prompt_played_to_the_caller_reaches_the_phone(media: Media, tmp_path: Path) -> None:
    greeting = Prompts(tmp_path / "home").path("greeting", "ru")
    a, b, _to_a_side, _to_b_side = await connect(media, "play1")
    try:
        played = await media.play("play1", "tag-a", greeting)
        assert played.ok, played.error
        assert played.data.get("duration", 0) > 1000  # ms, rtpengine's own reckoning of the file
        await until(lambda: len(a.received) >= 50)  # the callee is silent: all of it is the prompt
        await until(lambda: len(a.received) * 160 >= played.data["duration"] * 8 - 160, within=10)
        heard = a.audio()
        assert rms(heard) > 300  # speech, well above silence
        # And it is the file: its waveform lines up with what the phone got (G.711 keeps the shape).
        with wave.open(str(greeting)) as w:
            sent = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        got = heard.astype(np.float64)[:len(sent)]
        got, sent = got - got.mean(), sent - sent.mean()
        n = len(got) + len(sent)
        corr = np.fft.irfft(np.fft.rfft(got, n) * np.conj(np.fft.rfft(sent, n)), n)  # every lag at once
        match = corr.max() / (np.linalg.norm(got) * np.linalg.norm(sent))
        assert match > 0.9, match
        assert not b.received  # only the caller hears it
    finally:
        a.close()
        b.close()
        await media.finish("play1", 1)


async def test_rtpengine_killed_mid_call_is_reported_and_it_comes_back(media: Media,
                                                                        engine: RtpengineSupervisor) -> None:
    a, b, to_a_side, to_b_side = await connect(media, "kill1", record=True)
    try:
        await stream([(a, to_a_side, tone(440, 0.4)), (b, to_b_side, tone(880, 0.4))])
        assert engine.process is not None
        first_pid = engine.process.pid
        engine.process.kill()
        await engine.process.wait()
        # The call's media is gone: every command says so, nothing raises.
        played = await media.play("kill1", "tag-a", Path("/nonexistent.wav"))
        assert not played.ok and played.error
        outcome = await media.finish("kill1", 3)
        assert outcome is not None and not outcome.ok and "media lost" in outcome.error
        assert media.store is not None and media.store.failure(3, "kill1")
        # The supervisor restarts it (on a new port): a new client pings it.
        await until(lambda: engine.restarts == 1 and engine.pid not in (None, first_pid), within=15)
        client = engine.client()
        try:
            await until(client.ping, within=10)
        finally:
            await client.close()
    finally:
        a.close()
        b.close()


async def test_calls_go_on_unanchored_when_rtpengine_is_down(tmp_path: Path) -> None:
    client = NgClient("127.0.0.1", free_udp_port(), timeout=0.2, retries=1)
    media = Media(client, recording_dir=tmp_path / "rec", store=RecordingStore(tmp_path))
    try:
        offer_sdp = sdp(40000, 1)
        offer = await media.offer("down1", "tag-a", offer_sdp, record=True)
        assert not offer.anchored and offer.sdp == offer_sdp and offer.error
        answer = await media.answer("down1", "tag-a", "tag-b", sdp(40002, 2))
        assert not answer.anchored and answer.sdp == sdp(40002, 2)
        with pytest.raises(MediaUnavailable):
            await client.ping()
        outcome = await media.finish("down1", 1)
        assert outcome is not None and not outcome.ok
    finally:
        await client.close()


async def test_refusals_are_errors_with_rtpengines_reason(media: Media) -> None:
    with pytest.raises(RtpengineError) as refused:
        await media.client.query("no-such-call")
    assert refused.value.reason


async def test_a_key_pressed_on_a_phone_reaches_vpbx(media: Media,
                                                     keypad: tuple[DtmfListener, list[tuple[str, str, str]]]) -> None:
    a, b, to_a_side, _to_b_side = await connect(media, "keys1")
    try:
        await stream([(a, to_a_side, tone(440, 0.2))])
        await telephone_event(a, to_a_side, "2", seq=10, timestamp=10 * 160)  # RFC 4733, as phones send it
        await until(lambda: bool(keypad[1]))
        assert keypad[1] == [("keys1", "tag-a", "2")]
        assert any(pt == 101 for _, pt, _ in b.received)  # and the callee's phone got the event too
    finally:
        a.close()
        b.close()
        await media.finish("keys1", 1)
