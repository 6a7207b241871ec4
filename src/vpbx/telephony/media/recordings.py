"""Call recordings on disk: rtpengine's pcap turned into one mixed WAV, kept for a retention period.

rtpengine (``--recording-method=pcap``, userspace: no kernel module, no ``rtpengine-recording`` daemon) writes
one pcap per call holding every stream it forwarded, and, when the call ends, a metadata file whose first line
names that pcap. :func:`pcap_to_wav` decodes the G.711 streams (PCMU, PCMA; telephone-events and other
codecs are skipped), places each by its RTP timestamps from its first packet's arrival, and mixes them into
one 8 kHz mono 16-bit WAV: both parties in one file, as long as the talk.

:class:`RecordingStore` keeps ``<home>/recordings/<domain_id>/<callid>.wav``. When writing fails (disk full,
permissions) the call is not touched: :meth:`RecordingStore.save` returns ``Outcome(ok=False, error=...)``,
a ``<callid>.failed`` marker (a few bytes, best effort) records why, and the records route answers 404
"Recording failed" for that call's link. The wiring that finishes a call passes ``outcome.ok`` on, so the
history row has no link (what the documents show for an unrecorded call) and the log says why.
"""

from __future__ import annotations

import array
import errno
import logging
import os
import struct
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("vpbx.media")

SAMPLE_RATE = 8000
_DLT_EN10MB, _DLT_RAW, _DLT_RAW_ALT, _DLT_LINUX_SLL = 1, 101, 12, 113


class RecordingFailed(Exception):
    pass


def _ulaw_table() -> array.array[int]:
    out = array.array("h")
    for byte in range(256):
        u = ~byte & 0xFF
        t = ((u & 0x0F) << 3) + 0x84
        t <<= (u & 0x70) >> 4
        out.append((0x84 - t) if u & 0x80 else (t - 0x84))
    return out


def _alaw_table() -> array.array[int]:
    out = array.array("h")
    for byte in range(256):
        a = byte ^ 0x55
        t = (a & 0x0F) << 4
        seg = (a & 0x70) >> 4
        if seg == 0:
            t += 8
        elif seg == 1:
            t += 0x108
        else:
            t = (t + 0x108) << (seg - 1)
        out.append(t if a & 0x80 else -t)
    return out


ULAW = _ulaw_table()
ALAW = _alaw_table()
_TABLES = {0: ULAW, 8: ALAW}


def ulaw_encode(sample: int) -> int:
    """One 16-bit sample to a µ-law byte (G.711), for tests and generated RTP."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


@dataclass
class _Stream:
    first_arrival: float
    first_ts: int
    last_ts: int
    chunks: list[tuple[int, bytes, int]]  # (rtp timestamp unwrapped, payload, payload type)


def _udp_payloads(data: bytes) -> Iterator[tuple[float, tuple[str, int, str, int], bytes]]:
    """(arrival, (src, sport, dst, dport), UDP payload) of each IPv4/IPv6 UDP packet of a pcap file."""
    if len(data) < 24:
        raise RecordingFailed("not a pcap file (too short)")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise RecordingFailed("not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        pos += 16
        frame = data[pos:pos + incl]
        pos += incl
        if linktype == _DLT_EN10MB:
            ip = frame[14:]
        elif linktype == _DLT_LINUX_SLL:
            ip = frame[16:]
        elif linktype in (_DLT_RAW, _DLT_RAW_ALT):
            ip = frame
        else:
            raise RecordingFailed(f"pcap link type {linktype} not supported")
        if not ip:
            continue
        version = ip[0] >> 4
        if version == 4:
            ihl = (ip[0] & 0x0F) * 4
            if len(ip) < ihl + 8 or ip[9] != 17:
                continue
            src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
            udp = ip[ihl:]
        elif version == 6:
            if len(ip) < 48 or ip[6] != 17:
                continue
            src, dst = ip[8:24].hex(), ip[24:40].hex()
            udp = ip[40:]
        else:
            continue
        sport, dport = struct.unpack("!HH", udp[:4])
        yield sec + frac / (1e9 if nano else 1e6), (src, sport, dst, dport), udp[8:]


def pcap_to_pcm(data: bytes) -> array.array[int]:
    """The mixed 8 kHz signed 16-bit samples of every G.711 stream in a pcap."""
    streams: dict[tuple[tuple[str, int, str, int], int], _Stream] = {}
    for arrival, flow, rtp in _udp_payloads(data):
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        pt = rtp[1] & 0x7F
        if pt not in _TABLES:
            continue  # telephone-event, comfort noise, other codecs
        ts, ssrc = struct.unpack("!II", rtp[4:12])
        cc = rtp[0] & 0x0F
        offset = 12 + 4 * cc
        if rtp[0] & 0x10 and len(rtp) >= offset + 4:  # header extension
            offset += 4 + 4 * struct.unpack("!H", rtp[offset + 2:offset + 4])[0]
        payload = rtp[offset:]
        if rtp[0] & 0x20 and payload:  # padding
            payload = payload[:-payload[-1]]
        stream = streams.get((flow, ssrc))
        if stream is None:
            streams[(flow, ssrc)] = stream = _Stream(arrival, ts, ts, [])
        # Unwrap the 32-bit timestamp relative to the last one seen.
        delta = (ts - (stream.last_ts & 0xFFFFFFFF)) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        stream.last_ts += delta
        stream.chunks.append((stream.last_ts, payload, pt))
    if not streams:
        return array.array("h")
    start = min(s.first_arrival for s in streams.values())
    placed: list[tuple[int, bytes, int]] = []
    end = 0
    for s in streams.values():
        base = round((s.first_arrival - start) * SAMPLE_RATE) - s.first_ts
        for ts, payload, pt in s.chunks:
            at = base + ts
            if at < 0:
                continue
            placed.append((at, payload, pt))
            end = max(end, at + len(payload))
    mix = [0] * end
    for at, payload, pt in placed:
        table = _TABLES[pt]
        for i, byte in enumerate(payload):
            mix[at + i] += table[byte]
    return array.array("h", (32767 if v > 32767 else -32768 if v < -32768 else v for v in mix))


def write_wav(path: Path, pcm: array.array[int]) -> None:
    """An 8 kHz mono 16-bit WAV, written to a temporary name and renamed (never half a file)."""
    tmp = path.with_name(path.name + ".part")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            samples = pcm
            if sys.byteorder != "little":  # WAV is little-endian
                samples = array.array("h", pcm)
                samples.byteswap()
            w.writeframes(samples.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pcap_to_wav(pcap: Path, out: Path) -> float:
    """Convert; returns the recording's length in seconds."""
    pcm = pcap_to_pcm(pcap.read_bytes())
    write_wav(out, pcm)
    return len(pcm) / SAMPLE_RATE


def pcap_of(metadata: Path) -> Path:
    """The pcap a finished call's rtpengine metadata file names (its first line)."""
    with metadata.open(encoding="utf-8", errors="replace") as f:
        return Path(f.readline().strip())


def find_metadata(recording_dir: Path, call_id: str) -> list[Path]:
    """rtpengine's metadata files of a finished call (``metadata/rtpengine-meta-<callid>-<random>.txt``)."""
    return sorted((recording_dir / "metadata").glob(f"rtpengine-meta-{call_id}-*.txt"))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    path: Path | None = None
    seconds: float = 0.0
    error: str = ""


class RecordingStore:
    """``<home>/recordings/<domain_id>/<callid>.wav``, deleted after ``retention_days`` (0: kept forever)."""

    def __init__(self, home: Path, retention_days: float = 90.0) -> None:
        self.root = home / "recordings"
        self.retention_days = retention_days

    def path(self, domain_id: int, callid: str) -> Path:
        if not callid.replace("-", "").replace("_", "").isalnum():
            raise ValueError("callid")
        return self.root / str(domain_id) / f"{callid}.wav"

    def failed_marker(self, domain_id: int, callid: str) -> Path:
        return self.path(domain_id, callid).with_suffix(".failed")

    def find(self, domain_id: int, callid: str) -> Path | None:
        path = self.path(domain_id, callid)
        return path if path.is_file() else None

    def failure(self, domain_id: int, callid: str) -> str | None:
        try:
            return self.failed_marker(domain_id, callid).read_text(encoding="utf-8")[:200]
        except OSError:
            return None

    def _fail(self, domain_id: int, callid: str, error: str) -> Outcome:
        log.error("recording failed", extra={"domain_id": domain_id, "callid": callid, "error": error})
        try:
            marker = self.failed_marker(domain_id, callid)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(error, encoding="utf-8")
        except OSError:
            pass  # the disk that refused the recording may refuse this too: the log and the outcome say it
        return Outcome(False, error=error)

    def save_pcm(self, domain_id: int, callid: str, pcm: array.array[int]) -> Outcome:
        path = self.path(domain_id, callid)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, pcm)
        except OSError as exc:
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            return self._fail(domain_id, callid, reason)
        return Outcome(True, path, len(pcm) / SAMPLE_RATE)

    def save_from_rtpengine(self, domain_id: int, callid: str, recording_dir: Path, rtp_call_id: str | None = None,
                            *, remove_source: bool = True) -> Outcome:
        """Mix the finished call's pcap into the store (blocking: run it in a thread)."""
        metas = find_metadata(recording_dir, rtp_call_id or callid)
        if not metas:
            return self._fail(domain_id, callid, "rtpengine wrote no recording")
        try:
            pcaps = [pcap_of(m) for m in metas]
            pcm = array.array("h")
            for pcap in pcaps:  # a call re-offered with recording on has several; the longest is the call
                candidate = pcap_to_pcm(pcap.read_bytes())
                if len(candidate) > len(pcm):
                    pcm = candidate
        except (OSError, RecordingFailed) as exc:
            return self._fail(domain_id, callid, f"unreadable rtpengine recording: {exc}")
        outcome = self.save_pcm(domain_id, callid, pcm)
        if outcome.ok and remove_source:
            for m, p in zip(metas, pcaps, strict=True):
                m.unlink(missing_ok=True)
                p.unlink(missing_ok=True)
        return outcome

    def purge(self, now: float | None = None) -> int:
        """Delete recordings older than the retention; returns how many."""
        if self.retention_days <= 0 or not self.root.is_dir():
            return 0
        limit = (time.time() if now is None else now) - self.retention_days * 86400
        removed = 0
        for path in self.root.glob("*/*"):
            try:
                if path.suffix in (".wav", ".mp3", ".failed") and path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def purge_orphans(recording_dir: Path, idle_seconds: float = 86400.0, now: float | None = None) -> int:
    """Delete rtpengine's pcap/metadata files nothing touched for ``idle_seconds`` (a pcap's mtime moves while its
    call is recorded): left by calls whose mixing failed, or by a crash. Returns how many."""
    limit = (time.time() if now is None else now) - idle_seconds
    removed = 0
    for sub in ("pcaps", "metadata", "tmp"):
        folder = recording_dir / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed
