"""Real audio for tests: vpbx decodes every media upload (002 §12.2-12.3), so a header alone is refused."""

from __future__ import annotations

import io
import math
import struct
import wave


def tone_wav(seconds: float = 1.0, hz: float = 440.0, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of a sine tone, as a person's upload."""
    n = int(seconds * rate)
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(n))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()
