"""Audio conversion for the media path: anything uploaded becomes an 8 kHz mono 16-bit PCM WAV, once.

sox decodes (WAV in its many encodings, MP3 with Debian's ``libsox-fmt-mp3``, Ogg Vorbis), resamples and
writes a temporary file; the result is checked with Python's ``wave`` (a decoder that "succeeds" on garbage
gives no frames). rtpengine's ``play media``, the simulator and the console all play that one file.
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

log = logging.getLogger("vpbx.media")

RATE = 8000
MAX_SECONDS = 3600.0  # an hour of hold music is plenty; longer uploads are refused
TIMEOUT = 60.0


class AudioError(ValueError):
    """The file is not audio we can decode (corrupt, truncated, an unsupported encoding)."""


def sox_binary() -> str:
    found = shutil.which("sox")
    if found is None:
        raise AudioError("the server cannot convert audio (sox is not installed)")
    return found


@functools.cache
def sox_formats(binary: str) -> frozenset[str]:
    """The file formats this sox reads and writes (MP3 only with Debian's libsox-fmt-mp3)."""
    done = subprocess.run([binary, "-h"], capture_output=True, timeout=10, check=False)
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("AUDIO FILE FORMATS:"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def wav_info(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, frames) of a PCM WAV; AudioError if it is not one."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
    except (wave.Error, EOFError, ValueError) as exc:
        raise AudioError(f"not a PCM WAV: {exc}") from exc


def convert_to_wav8k(data: bytes, fmt: str) -> bytes:
    """Decode ``data`` (``fmt``: wav, mp3 or ogg) into an 8 kHz mono 16-bit WAV, or raise AudioError."""
    if fmt not in ("wav", "mp3", "ogg"):
        raise AudioError(f"unsupported format {fmt!r}")
    binary = sox_binary()
    if fmt not in sox_formats(binary):
        log.error("sox cannot decode this format", extra={"format": fmt, "fix": "apt-get install libsox-fmt-mp3"})
        raise AudioError(f"this server cannot decode {fmt} files yet (its sox lacks {fmt} support)")
    with tempfile.TemporaryDirectory(prefix="vpbx-audio-") as tmp:
        src, dst = Path(tmp) / f"in.{fmt}", Path(tmp) / "out.wav"
        src.write_bytes(data)
        try:
            done = subprocess.run(
                [binary, "-V1", "-t", fmt, str(src), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                 "-t", "wav", str(dst)], capture_output=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AudioError("the file took too long to decode") from exc
        if done.returncode != 0 or not dst.is_file():
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            # sox says "sox FAIL formats: can't open input file `<tmp path>': <why>": keep the why, never the path.
            reason = detail[-1].rpartition("': ")[2].strip() if detail else ""
            if not reason or tmp in reason or "sox" in reason:
                reason = "the data is damaged or not in a supported encoding"
            raise AudioError(f"cannot decode the {fmt} file: {reason[:200]}")
        out = dst.read_bytes()
    channels, width, rate, frames = wav_info(out)
    if (channels, width, rate) != (1, 2, RATE):
        raise AudioError("conversion gave an unexpected format")
    if frames == 0:
        raise AudioError(f"the {fmt} file holds no audio")
    if frames > MAX_SECONDS * RATE:
        raise AudioError(f"the audio is longer than {MAX_SECONDS / 60:g} minutes")
    return out


def can_encode_mp3() -> bool:
    try:
        return "mp3" in sox_formats(sox_binary())
    except AudioError:
        return False


def wav_to_mp3(wav: Path, mp3: Path, kbps: int = 24) -> None:
    """Encode a WAV file as MP3 (sox with libsox-fmt-mp3), written to a temporary name and renamed."""
    part = mp3.with_name(mp3.name + ".part")
    done = subprocess.run([sox_binary(), "-V1", str(wav), "-t", "mp3", "-C", str(kbps), str(part)],
                          capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        part.unlink(missing_ok=True)
        raise AudioError("MP3 encoding failed")
    part.replace(mp3)
