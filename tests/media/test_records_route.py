"""The history's ``link`` serves a call's real recording from the store, says when recording failed, and the
simulator's generated recording otherwise."""

from __future__ import annotations

import array
import io
import wave
from collections.abc import Iterator

import httpx
import pytest
from tests.engine.test_records import link_of, talk
from tests.engine.test_rules import Env, make_env

from vpbx.engine import records
from vpbx.services import audio
from vpbx.telephony.media.recordings import RecordingStore
from vpbx.testing.server import ServerThread, Tenant


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    yield from make_env(vserver, vtenant)


def parsed(env: Env, link: str) -> records.Token:
    token = records.parse(env.server.runtime, link.rsplit("/", 1)[1])
    assert token is not None
    return token


def test_a_stored_recording_is_what_the_link_serves(env: Env) -> None:
    talk(env, seconds=5)
    link = link_of(env) or ""
    token = parsed(env, link)
    store = RecordingStore(env.server.settings.home)
    pcm = array.array("h", [1234, -1234] * 4000)  # 1 s, distinguishable from the simulator's tones
    assert store.save_pcm(token.domain_id, token.callid, pcm).ok
    with httpx.Client(timeout=30) as anon:
        r = anon.get(link, params={"format": "wav"})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(r.content)) as w:
            assert w.getnframes() == 8000 and w.readframes(2) == array.array("h", [1234, -1234]).tobytes()
        if not audio.can_encode_mp3():
            assert anon.get(link).headers["content-type"] == "audio/wav"  # no encoder: WAV unless MP3 is asked for
            return
        mp3 = anon.get(link)  # MP3 by default, as the live platform serves
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        assert mp3.headers["content-disposition"] == f'inline; filename="{token.callid}.mp3"'
        with wave.open(io.BytesIO(audio.convert_to_wav8k(mp3.content, "mp3"))) as w:
            assert abs(w.getnframes() / 8000 - 1.0) < 0.2  # the stored recording's length, not the simulator's 5 s
        kept = store.path(token.domain_id, token.callid).with_suffix(".mp3")
        assert kept.is_file()  # encoded once, kept beside the WAV
        made = kept.stat().st_mtime_ns
        again = anon.get(link, params={"format": "mp3"})
        assert again.content == mp3.content and kept.stat().st_mtime_ns == made


def test_a_failed_recording_says_so(env: Env) -> None:
    talk(env, seconds=5)
    link = link_of(env) or ""
    token = parsed(env, link)
    store = RecordingStore(env.server.settings.home)
    store._fail(token.domain_id, token.callid, "disk full")
    with httpx.Client(timeout=10) as anon:
        r = anon.get(link)
    assert r.status_code == 404 and r.json()["message"] == "Recording failed: disk full"


def test_a_simulated_call_is_mp3_by_default_and_wav_on_request(env: Env) -> None:
    talk(env, seconds=6)
    link = link_of(env) or ""
    with httpx.Client(timeout=30) as anon:
        wav = anon.get(link, params={"format": "wav"})
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(wav.content)) as w:
            assert w.getnframes() == 6 * 8000
        bad = anon.get(link, params={"format": "ogg"})
        assert bad.status_code == 400 and bad.json()["message"] == "Validation error"
        if not audio.can_encode_mp3():
            pytest.skip("sox has no MP3 encoder (Debian: libsox-fmt-mp3)")
        r = anon.get(link)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
        decoded = audio.convert_to_wav8k(r.content, "mp3")  # it decodes, and is as long as the talk
        with wave.open(io.BytesIO(decoded)) as w:
            assert abs(w.getnframes() / 8000 - 6.0) < 0.2
        again = anon.get(link, params={"format": "mp3"})
        assert again.content == r.content  # the same audio every time (encoded as it streams, not kept)
