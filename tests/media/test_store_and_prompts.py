"""The recording store (retention, a full disk), the default prompts (espeak-ng) and the simulator's recording."""

from __future__ import annotations

import array
import io
import os
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from tests.media.rtp import peaks, rms

from vpbx.engine import records
from vpbx.telephony.media.prompts import NAMES, PromptError, Prompts
from vpbx.telephony.media.recordings import RecordingStore, purge_orphans


def read_wav(path_or_bytes: Path | bytes) -> tuple[float, np.ndarray]:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with wave.open(src) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.getnframes() / 8000, np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_a_full_disk_fails_the_recording_not_the_call(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    target = store.path(1, "full1")
    target.parent.mkdir(parents=True)
    # The store writes <callid>.wav.part then renames: pointing that name at /dev/full makes the kernel answer
    # ENOSPC to the write, as a full disk does.
    Path(str(target) + ".part").symlink_to("/dev/full")
    outcome = store.save_pcm(1, "full1", array.array("h", [1000] * 8000))
    assert not outcome.ok and outcome.error == "disk full"
    assert store.find(1, "full1") is None
    assert store.failure(1, "full1") == "disk full"  # the records route answers "Recording failed: disk full"


def test_recordings_older_than_the_retention_are_purged(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, retention_days=30)
    old, new = store.save_pcm(1, "old1", array.array("h", [0] * 800)), store.save_pcm(1, "new1", array.array("h"))
    assert old.ok and new.ok and old.path is not None
    month_ago = time.time() - 31 * 86400
    os.utime(old.path, (month_ago, month_ago))
    assert store.purge() == 1
    assert store.find(1, "old1") is None and store.find(1, "new1") is not None
    assert RecordingStore(tmp_path, retention_days=0).purge() == 0  # 0: kept forever


def test_callids_cannot_leave_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RecordingStore(tmp_path).path(1, "../../etc/passwd")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_default_prompts_are_generated_once_as_8khz_wav(tmp_path: Path, lang: str) -> None:
    prompts = Prompts(tmp_path)
    greeting = prompts.path("greeting", lang)
    seconds, samples = read_wav(greeting)
    assert seconds > 1.5 and rms(samples) > 500  # speech, not silence
    made = greeting.stat().st_mtime_ns
    assert prompts.path("greeting", lang) == greeting and greeting.stat().st_mtime_ns == made  # cached
    ringback_seconds, ringback = read_wav(prompts.path("ringback", lang))
    assert ringback_seconds == 5.0 and abs(peaks(ringback)[0] - 425) <= 2


def test_every_default_prompt_exists(tmp_path: Path) -> None:
    paths = Prompts(tmp_path).ensure_all()
    assert len(paths) == 2 * len(NAMES) and all(read_wav(p)[0] > 1 for p in paths)


def test_a_missing_espeak_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PromptError, match="espeak-ng is not installed"):
        Prompts(tmp_path).path("menu", "en")
    assert Prompts(tmp_path).path("holdmusic").is_file()  # tones need no synthesizer


def test_the_simulators_recording_lasts_the_talk_with_both_parties_as_tones() -> None:
    seconds, samples = read_wav(records.tone_wav(7.5))
    assert seconds == 7.5
    assert sorted(round(p) for p in peaks(samples, 2)) == [440, 880]
    first, second = samples[:8000], samples[8000:16000]  # they take turns, a second each
    assert abs(peaks(first)[0] - 440) <= 1 and abs(peaks(second)[0] - 880) <= 1


def test_rtpengines_leftovers_are_purged_once_idle(tmp_path: Path) -> None:
    (tmp_path / "pcaps").mkdir()
    stale, live = tmp_path / "pcaps" / "a-1.pcap", tmp_path / "pcaps" / "b-2.pcap"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    day_ago = time.time() - 86401
    os.utime(stale, (day_ago, day_ago))
    assert purge_orphans(tmp_path) == 1
    assert not stale.exists() and live.exists()
