"""Call recordings (call-flows step 9, 002 §12.5): signed, expiring links and the (simulated) audio.

A link is ``<base>/records/<domain_id>.<callid>.<expires>.<signature>``: the signature is an HMAC-SHA256
over the first three parts under a key derived from the server secret, so nobody can forge a link or
extend its life. A link works without a key for ``LINK_TTL``; with the domain's ``X-API-KEY`` it works
for as long as the call is in the history. The simulator has no media: the recording is a tone as long
as the conversation, capped at ``MAX_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import struct
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta

from vpbx.runtime import Runtime

LINK_TTL = timedelta(days=7)
MAX_SECONDS = 10
SAMPLE_RATE = 8000
TONE_HZ = 425.0  # the Russian dial tone
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


def tone_wav(seconds: float) -> bytes:
    """A mono 16-bit PCM WAV of a tone, ``seconds`` long (at least 1 s, at most ``MAX_SECONDS``)."""
    frames = int(SAMPLE_RATE * min(max(seconds, 1.0), MAX_SECONDS))
    step = 2 * math.pi * TONE_HZ / SAMPLE_RATE
    period = round(SAMPLE_RATE / TONE_HZ * 40)  # a whole number of cycles, repeated
    cycle = b"".join(struct.pack("<h", int(8000 * math.sin(step * i))) for i in range(period))
    pcm = (cycle * (frames // period + 1))[: frames * 2]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return out.getvalue()
