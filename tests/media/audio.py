"""Real audio for tests: tones as WAV, MP3 and Ogg (sox), and the spectrum helpers the media tests use."""

from __future__ import annotations

import io
import subprocess
import tempfile
import wave
from functools import cache
from pathlib import Path

from vpbx.testing.audio import tone_wav


@cache
def encoded(fmt: str, seconds: float = 1.0, hz: float = 440.0) -> bytes:
    """The tone encoded as ``fmt`` (mp3, ogg) by sox."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / f"out.{fmt}"
        src.write_bytes(tone_wav(seconds, hz, 22050))
        subprocess.run(["sox", str(src), str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


def mp3_without_id3(data: bytes) -> bytes:
    if data[:3] != b"ID3":
        return data
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size:]


def wav_seconds(data: bytes) -> tuple[float, int, int, int]:
    """(seconds, rate, channels, sample width) of a WAV."""
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate(), w.getframerate(), w.getnchannels(), w.getsampwidth()
