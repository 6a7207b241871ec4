"""Test phones for the media tests: UDP endpoints that send and receive G.711 µ-law RTP, and spectra."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from vpbx.telephony.media.recordings import ULAW, ulaw_encode

RATE = 8000
PTIME = 160  # samples per packet (20 ms)
_ULAW = np.array(ULAW, dtype=np.int16)
_ENCODE = np.array([ulaw_encode(v) for v in range(-32768, 32768)], dtype=np.uint8)


def sdp(port: int, session: int) -> str:
    return (f"v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")


def media_port(sdp_text: str) -> int:
    for line in sdp_text.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no m=audio in {sdp_text!r}")


def tone(hz: float, seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def encode(samples: npt.NDArray[np.int16]) -> bytes:
    return bytes(_ENCODE[samples.astype(np.int32) + 32768])


def decode(payload: bytes) -> npt.NDArray[np.int16]:
    return _ULAW[np.frombuffer(payload, dtype=np.uint8)]


def peaks(samples: npt.NDArray[np.int16], count: int = 1) -> list[float]:
    """The ``count`` strongest frequencies (Hz, 1 Hz bins after zero padding), strongest first, at least
    50 Hz apart."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x, n=max(RATE, len(x))))
    freqs = np.fft.rfftfreq(max(RATE, len(x)), 1 / RATE)
    found: list[float] = []
    for i in np.argsort(spectrum)[::-1]:
        f = float(freqs[i])
        if all(abs(f - g) > 50 for g in found):
            found.append(f)
        if len(found) == count:
            break
    return found


def rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


@dataclass
class Phone(asyncio.DatagramProtocol):
    """One RTP endpoint on loopback: ``received`` holds (ssrc, payload type, payload) in arrival order."""

    ssrc: int
    received: list[tuple[int, int, bytes]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, ssrc: int) -> Phone:
        phone = cls(ssrc)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: phone, local_addr=("127.0.0.1", 0))
        return phone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2:
            self.received.append((struct.unpack("!I", data[8:12])[0], data[1] & 0x7F, data[12:]))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def audio(self, *, exclude_ssrc: int | None = None) -> npt.NDArray[np.int16]:
        parts = [decode(p) for s, pt, p in self.received if pt == 0 and s != exclude_ssrc]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def stream(sends: list[tuple[Phone, int, npt.NDArray[np.int16]]]) -> None:
    """Each phone sends its samples to its port as 20 ms PCMU packets, paced in real time, all together."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    packets = max(len(s) for _, _, s in sends) // PTIME
    for i in range(packets):
        for phone, port, samples in sends:
            chunk = samples[i * PTIME:(i + 1) * PTIME]
            if len(chunk) == PTIME and phone.transport is not None:
                header = struct.pack("!BBHII", 0x80, 0x80 if i == 0 else 0, i & 0xFFFF, i * PTIME, phone.ssrc)
                phone.transport.sendto(header + encode(chunk), ("127.0.0.1", port))
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))


async def telephone_event(phone: Phone, port: int, digit: str, *, seq: int, timestamp: int,
                          packets: int = 6) -> None:
    """One key press as RFC 4733 telephone-events (payload type 101): growing duration, three end packets."""
    event = "0123456789*#ABCD".index(digit)
    assert phone.transport is not None
    for k in range(packets + 2):
        end = k >= packets - 1
        body = struct.pack("!BBH", event, (0x80 if end else 0) | 10, 160 * (min(k, packets - 1) + 1))
        header = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | 101, (seq + k) & 0xFFFF, timestamp, phone.ssrc)
        phone.transport.sendto(header + body, ("127.0.0.1", port))
        await asyncio.sleep(0.02)
