"""Call recordings: rtpengine's pcap turned into one mixed WAV, kept on disk or in an object store for a retention
period.

rtpengine (``--recording-method=pcap``, userspace: no kernel module, no ``rtpengine-recording`` daemon) writes
one pcap per call holding every stream it forwarded, and, when the call ends, a metadata file whose first line
names that pcap. :func:`pcap_to_wav` decodes the G.711 streams (PCMU, PCMA; telephone-events and other
codecs are skipped), places each by its RTP timestamps from its first packet's arrival, and mixes them into
one 8 kHz mono 16-bit WAV: both parties in one file, as long as the talk.

:class:`RecordingStore` keeps ``<domain_id>/<callid>.wav`` under ``<home>/recordings`` (the default) or under an
S3-compatible bucket's prefix (``VPBX_RECORDING_STORE=s3://...``, :mod:`.objectstore`); the MP3 the link serves
by default is encoded once, on first request, and kept beside it. When writing fails (disk full, permissions,
the object store down or full) the call is not touched: :meth:`RecordingStore.save_pcm` returns
``Outcome(ok=False, error=...)``, a ``<callid>.failed`` marker (a few bytes, best effort, always on the local disk
so it can be written while the object store is down) records why, and the records route answers 404
"Recording failed: <why>" for that call's link. The wiring that finishes a call passes ``outcome.ok`` on, so the
history row has no link (what the documents show for an unrecorded call) and the log says why.
"""

from __future__ import annotations

import array
import errno
import io
import logging
import os
import struct
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vpbx.services import audio
from vpbx.telephony.media.objectstore import ObjectStore, ObjectStoreError, parse_location

if TYPE_CHECKING:
    from vpbx.settings import Settings

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


def pcap_to_pcm(data: bytes, span: tuple[float, float] | None = None) -> array.array[int]:
    """The mixed 8 kHz signed 16-bit samples of every G.711 stream in a pcap. ``span``: the recording's wall-clock
    (start, end): the mix is placed in it and lasts exactly that long (a party that sent no RTP for a while, or
    none yet, is silence in the file rather than missing time)."""
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
        return array.array("h", bytes(2 * max(0, round((span[1] - span[0]) * SAMPLE_RATE)))) if span \
            else array.array("h")
    start = span[0] if span is not None else min(s.first_arrival for s in streams.values())
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
    if span is not None:
        end = max(0, round((span[1] - span[0]) * SAMPLE_RATE))
    # numpy: a call's minutes of samples are decoded and summed in C (a Python loop costs ~1 s a minute of call).
    import numpy as np

    tables = {pt: np.asarray(table, dtype=np.int32) for pt, table in _TABLES.items()}
    mix = np.zeros(end, dtype=np.int32)
    for at, payload, pt in placed:
        chunk = payload[:max(0, end - at)]
        if chunk:
            mix[at:at + len(chunk)] += tables[pt][np.frombuffer(chunk, dtype=np.uint8)]
    return array.array("h", np.clip(mix, -32768, 32767).astype(np.int16).tobytes())


def _write_wav_to(target: str | BinaryIO, pcm: array.array[int]) -> None:
    with wave.open(target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        samples = pcm
        if sys.byteorder != "little":  # WAV is little-endian
            samples = array.array("h", pcm)
            samples.byteswap()
        w.writeframes(samples.tobytes())


def write_wav(path: Path, pcm: array.array[int]) -> None:
    """An 8 kHz mono 16-bit WAV, written to a temporary name and renamed (never half a file)."""
    tmp = path.with_name(path.name + ".part")
    try:
        _write_wav_to(str(tmp), pcm)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def wav_bytes(pcm: array.array[int]) -> bytes:
    """The same WAV in memory (for an object store: one PUT of a call's mix, which is in memory already)."""
    out = io.BytesIO()
    _write_wav_to(out, pcm)
    return out.getvalue()


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
    # A listing and a prefix, not Path.glob: glob compiles its pattern on every call, and this runs per call.
    folder = recording_dir / "metadata"
    prefix = f"rtpengine-meta-{call_id}-"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if n.startswith(prefix) and n.endswith(".txt"))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    path: Path | None = None  # on disk
    seconds: float = 0.0
    error: str = ""
    name: str = ""  # in an object store: ``<domain_id>/<callid>.wav`` under the store's prefix


@dataclass(frozen=True)
class Stored:
    """A stored recording ready to serve: a file on disk (``path``) or an object (``name`` under the prefix)."""
    size: int
    path: Path | None = None
    name: str = ""
    media_type: str = "audio/wav"


_KEPT = (".wav", ".mp3", ".failed")  # what the retention removes


class RecordingStore:
    """``<domain_id>/<callid>.wav`` under ``<home>/recordings`` or, with ``location`` (``s3://bucket/prefix?...``),
    in that object store; deleted after ``retention_days`` (0: kept forever). Blocking: call it from a thread
    (a disk store's ``find``/``failure``/``_fail`` are cheap enough for the event loop; an object store's are not)."""

    def __init__(self, home: Path, retention_days: float = 90.0, location: str = "") -> None:
        self.root = home / "recordings"
        self.retention_days = retention_days
        self.objects = ObjectStore(parse_location(location)) if location.strip() else None

    @classmethod
    def for_settings(cls, settings: Settings) -> RecordingStore:
        """The store ``VPBX_RECORDING_STORE`` / ``VPBX_RECORDING_RETENTION_DAYS`` describe (ValueError: bad URL)."""
        return cls(settings.home, settings.recording_retention_days, settings.recording_store)

    def path(self, domain_id: int, callid: str) -> Path:
        """The recording's file on disk (with an object store: where its local failure marker goes)."""
        if not callid.replace("-", "").replace("_", "").isalnum():
            raise ValueError("callid")
        return self.root / str(domain_id) / f"{callid}.wav"

    def name(self, domain_id: int, callid: str, suffix: str = ".wav") -> str:
        """The recording's object name under the store's prefix."""
        return f"{self.path(domain_id, callid).parent.name}/{callid}{suffix}"

    def failed_marker(self, domain_id: int, callid: str) -> Path:
        return self.path(domain_id, callid).with_suffix(".failed")

    def find(self, domain_id: int, callid: str) -> Stored | None:
        """The call's recording, or None. ObjectStoreError when the object store cannot be asked."""
        if self.objects is not None:
            name = self.name(domain_id, callid)
            size = self.objects.size(name)
            return None if size is None else Stored(size, name=name)
        path = self.path(domain_id, callid)
        try:
            return Stored(path.stat().st_size, path=path) if path.is_file() else None
        except OSError:
            return None

    def local_failure(self, domain_id: int, callid: str) -> str | None:
        """Why the call's recording failed, from the local marker alone (no object store asked)."""
        try:
            return self.failed_marker(domain_id, callid).read_text(encoding="utf-8")[:200]
        except OSError:
            return None

    def failure(self, domain_id: int, callid: str) -> str | None:
        """Why the call's recording failed, or None. ObjectStoreError when the object store cannot be asked."""
        local = self.local_failure(domain_id, callid)
        if local is not None:
            return local
        if self.objects is not None:
            text = self.objects.read_text(self.name(domain_id, callid, ".failed"), 200)
            return None if text is None else text[:200]
        return None

    def _fail(self, domain_id: int, callid: str, error: str) -> Outcome:
        """Log it and leave the local marker (cheap: callable from the event loop)."""
        log.error("recording failed", extra={"domain_id": domain_id, "callid": callid, "error": error})
        try:
            marker = self.failed_marker(domain_id, callid)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(error, encoding="utf-8")
        except OSError:
            pass  # the disk that refused the recording may refuse this too: the log and the outcome say it
        return Outcome(False, error=error)

    def _fail_shared(self, domain_id: int, callid: str, error: str) -> Outcome:
        """A failure that is not the object store's: the marker also goes there, for the other cluster nodes
        serving the link (best effort; from a thread)."""
        outcome = self._fail(domain_id, callid, error)
        if self.objects is not None:
            try:
                self.objects.put(self.name(domain_id, callid, ".failed"), error.encode(), "text/plain; charset=utf-8")
            except ObjectStoreError:
                pass
        return outcome

    def record_failure(self, domain_id: int, callid: str, error: str) -> Outcome:
        """A call's recording could not be made (media lost, nothing left on voicemail): its link says why."""
        return self._fail_shared(domain_id, callid, error)

    def save_pcm(self, domain_id: int, callid: str, pcm: array.array[int]) -> Outcome:
        seconds = len(pcm) / SAMPLE_RATE
        if self.objects is not None:
            name = self.name(domain_id, callid)
            try:
                self.objects.put(name, wav_bytes(pcm), "audio/wav")
            except ObjectStoreError as exc:
                return self._fail(domain_id, callid, exc.reason)
            self._forget_failure(domain_id, callid)
            return Outcome(True, None, seconds, name=name)
        path = self.path(domain_id, callid)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, pcm)
        except OSError as exc:
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            return self._fail(domain_id, callid, reason)
        self._forget_failure(domain_id, callid)
        return Outcome(True, path, seconds)

    def _forget_failure(self, domain_id: int, callid: str) -> None:
        """A saved recording outranks an earlier failure (the link looks at the local marker first)."""
        try:
            self.failed_marker(domain_id, callid).unlink(missing_ok=True)
        except OSError:
            pass

    def save_from_rtpengine(self, domain_id: int, callid: str, recording_dir: Path, rtp_call_id: str | None = None,
                            *, remove_source: bool = True, span: tuple[float, float] | None = None) -> Outcome:
        """Mix the finished call's pcap into the store (blocking: run it in a thread)."""
        metas = find_metadata(recording_dir, rtp_call_id or callid)
        if not metas:
            return self._fail_shared(domain_id, callid, "rtpengine wrote no recording")
        try:
            pcaps = [pcap_of(m) for m in metas]
            pcm = array.array("h")
            for pcap in pcaps:  # a call re-offered with recording on has several; the longest is the call
                candidate = pcap_to_pcm(pcap.read_bytes(), span)
                if len(candidate) > len(pcm):
                    pcm = candidate
        except (OSError, RecordingFailed) as exc:
            return self._fail_shared(domain_id, callid, f"unreadable rtpengine recording: {exc}")
        outcome = self.save_pcm(domain_id, callid, pcm)
        if outcome.ok and remove_source:
            for m, p in zip(metas, pcaps, strict=True):
                m.unlink(missing_ok=True)
                p.unlink(missing_ok=True)
        return outcome

    def mp3_of(self, domain_id: int, callid: str, wav: Stored) -> Stored:
        """The recording as MP3, encoded once and kept beside its WAV (the retention removes both).
        audio.AudioError when encoding fails; ObjectStoreError when the object store does."""
        if wav.path is not None:
            mp3 = wav.path.with_suffix(".mp3")
            if not mp3.is_file():
                # A name of its own per request: two first requests at once encode twice, never into one file.
                fd, name = tempfile.mkstemp(dir=mp3.parent, prefix=f".{mp3.stem}-", suffix=".mp3")
                os.close(fd)
                try:
                    audio.wav_to_mp3(wav.path, Path(name))
                    os.replace(name, mp3)
                finally:
                    Path(name).unlink(missing_ok=True)
            return Stored(mp3.stat().st_size, path=mp3, media_type="audio/mpeg")
        assert self.objects is not None
        name = self.name(domain_id, callid, ".mp3")
        size = self.objects.size(name)
        if size is None:
            with tempfile.TemporaryDirectory(prefix="vpbx-record-") as tmp:
                src, out = Path(tmp) / "r.wav", Path(tmp) / "r.mp3"
                try:
                    self.objects.download(wav.name, src)
                except FileNotFoundError as exc:  # purged between the look-up and now
                    raise ObjectStoreError("recording no longer stored") from exc
                audio.wav_to_mp3(src, out)
                self.objects.put_file(name, out, "audio/mpeg")
                size = out.stat().st_size
        return Stored(size, name=name, media_type="audio/mpeg")

    def open(self, stored: Stored) -> tuple[int, Iterator[bytes]]:
        """(size, chunks) of a stored recording, streamed. The first request is made here: a store that is down
        raises ObjectStoreError before any response starts."""
        if self.objects is not None and stored.name:
            try:
                return self.objects.open(stored.name)
            except FileNotFoundError as exc:
                raise ObjectStoreError("recording no longer stored") from exc
        assert stored.path is not None
        f = stored.path.open("rb")

        def chunks() -> Iterator[bytes]:
            with f:
                while block := f.read(64 * 1024):
                    yield block

        return stored.size, chunks()

    def purge(self, now: float | None = None) -> int:
        """Delete recordings older than the retention; returns how many."""
        if self.retention_days <= 0:
            return 0
        limit = (time.time() if now is None else now) - self.retention_days * 86400
        removed = 0
        if self.root.is_dir():  # the disk store, or an object store's local failure markers
            for path in self.root.glob("*/*"):
                try:
                    if path.suffix in _KEPT and path.stat().st_mtime < limit:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue
        if self.objects is not None:
            try:
                old = [name for name, modified in self.objects.listing()
                       if name.endswith(_KEPT) and modified.timestamp() < limit]
                removed += self.objects.delete(old)
            except ObjectStoreError as exc:  # the next round tries again
                log.warning("recording retention could not reach the object store", extra={"error": exc.reason})
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
