"""Call recordings (call-flows step 9, 002 §12.5): signed, expiring links and the (simulated) audio.

A link is ``<base>/records/<domain_id>.<callid>.<expires>.<signature>``: the signature is an HMAC-SHA256
over the first three parts under a key derived from the server secret, so nobody can forge a link or
extend its life. A link works without a key for ``LINK_TTL``; with the domain's ``X-API-KEY`` it works
for as long as the call is in the history. A call recorded by rtpengine is served from the recording store
(:mod:`vpbx.telephony.media.recordings`); a simulated call has no media: its recording is generated, as long
as the conversation (capped at ``MAX_SECONDS``), the two parties as two tones.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from vpbx.runtime import Runtime

LINK_TTL = timedelta(days=7)
MAX_SECONDS = 4 * 3600  # streamed, so a long call costs no memory
SAMPLE_RATE = 8000
PARTY_HZ = (440.0, 880.0)  # the simulated recording's two parties
_KEY = "records-key"
_CONTEXT = b"vpbx record links v1"


def _key(runtime: Runtime) -> bytes:
    key = runtime.extras.get(_KEY)
    if not isinstance(key, bytes):
        from vpbx.secrets_store import server_secret

        key = hmac.new(server_secret(runtime.settings).encode(), _CONTEXT, hashlib.sha256).digest()
        runtime.extras[_KEY] = key
    return key


def _signature(key: bytes, domain_id: int, callid: str, expires: int) -> str:
    return hmac.new(key, f"{domain_id}.{callid}.{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def base_url(runtime: Runtime) -> str:
    s = runtime.settings
    public = getattr(s, "public_url", "") or ""
    if public:
        return public.rstrip("/")
    scheme = "https" if s.tls_cert else "http"
    host = s.host if ":" not in s.host else f"[{s.host}]"
    return f"{scheme}://{host}:{s.port}"


def token_for(runtime: Runtime, domain_id: int, callid: str, now: datetime) -> str:
    expires = int((now + LINK_TTL).timestamp())
    return f"{domain_id}.{callid}.{expires}.{_signature(_key(runtime), domain_id, callid, expires)}"


def link_for(runtime: Runtime, domain_id: int, callid: str, now: datetime) -> str:
    return f"{base_url(runtime)}/records/{token_for(runtime, domain_id, callid, now)}"


@dataclass(frozen=True)
class Token:
    domain_id: int
    callid: str
    expires: int

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.expires


def parse(runtime: Runtime, token: str) -> Token | None:
    """The token's fields when its signature is ours (expiry is the caller's decision); else None."""
    parts = token.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit() or not parts[1].isalnum():
        return None
    domain_id, callid, expires = int(parts[0]), parts[1], int(parts[2])
    if not hmac.compare_digest(parts[3], _signature(_key(runtime), domain_id, callid, expires)):
        return None
    return Token(domain_id, callid, expires)


def _wav_header(frames: int) -> bytes:
    data = frames * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16) + b"data" + struct.pack("<I", data))


def _second(hz: float) -> bytes:
    """One second of a tone; 440 and 880 Hz are whole cycles per second, so seconds join without a click."""
    step = 2 * math.pi * hz / SAMPLE_RATE
    return b"".join(struct.pack("<h", int(8000 * math.sin(step * i))) for i in range(SAMPLE_RATE))


_SECONDS: dict[float, bytes] = {}


def _tone_second(hz: float) -> bytes:
    if hz not in _SECONDS:
        _SECONDS[hz] = _second(hz)
    return _SECONDS[hz]


def wav_frames(seconds: float) -> int:
    return int(SAMPLE_RATE * min(max(seconds, 1.0), MAX_SECONDS))


def tone_wav_chunks(seconds: float) -> Iterator[bytes]:
    """The simulator's recording as a stream: a mono 16-bit 8 kHz WAV exactly as long as the talk (at least 1 s,
    at most ``MAX_SECONDS``), the two parties taking turns each second — the caller at ``PARTY_HZ[0]``, the
    other party at ``PARTY_HZ[1]`` — so a player hears a conversation and a spectrum shows both peaks."""
    frames = wav_frames(seconds)
    yield _wav_header(frames)
    whole, rest = divmod(frames, SAMPLE_RATE)
    for i in range(whole):
        yield _tone_second(PARTY_HZ[i % 2])
    if rest:
        yield _tone_second(PARTY_HZ[whole % 2])[: rest * 2]


def tone_wav(seconds: float) -> bytes:
    return b"".join(tone_wav_chunks(seconds))
