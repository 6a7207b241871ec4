"""Concurrent G.711 calls through vpbx's rtpengine (userspace forwarding), recorded and not, side by side.

Each call is two loopback phones that offer/answer through rtpengine (vpbx's ng client, the supervisor's
rtpengine) and send each other 20 ms PCMU packets for ``--seconds``. A step passes when, over all calls,

- loss < 0.1 %: packets rtpengine counted on each stream (its own ``query`` statistics) against packets the
  phones sent, and packets the phones received against packets rtpengine counted;
- jitter < 20 ms: RFC 3550's jitter estimator over each packet's transit through rtpengine (the kernel's arrival
  timestamp at the receiving phone, SO_TIMESTAMPNS, minus the packet's send time, so neither the Python sender's
  pacing nor its event loop's lateness is counted), the worst stream's
  peak. rtpengine reports per-SSRC jitter only from RTCP or when it transcodes; plain forwarding leaves its
  ``SSRC`` statistics empty, so the phones measure it.

Steps double the number of calls from ``--start`` until one fails or ``--max``. CPU per call is rtpengine's CPU
time (``/proc/<pid>/stat``) over the step, per call, in % of one core. The phones are this Python process: when
its sender falls behind (``lag``), the step measures the generator, and the line says so.

    .venv/bin/python bench/media.py [--seconds 8] [--start 25] [--max 800]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from _common import cpu_seconds

from vpbx.telephony.media.rtpengine import NgClient
from vpbx.telephony.media.supervisor import RtpengineConfig, RtpengineSupervisor

PTIME = 0.02
PAYLOAD = bytes([0xFF]) * 160  # µ-law silence-ish: rtpengine forwards bytes, content does not matter
WARMUP = 25  # packets per stream left out of the jitter
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: receive timestamps in ancillary data


@dataclass
class Leg:
    sock: socket.socket
    ssrc: int
    dest: int = 0
    sent: int = 0
    received: int = 0
    jitter: float = 0.0  # RFC 3550's estimator, in seconds
    max_jitter: float = 0.0
    peer: Leg | None = None  # the leg whose packets this one receives
    sent_at: list[float] | None = None  # send time by sequence number
    _transit: float | None = None

    def on_packet(self, data: bytes, arrival: float) -> None:
        self.received += 1
        assert self.peer is not None and self.peer.sent_at is not None
        seq = struct.unpack_from("!H", data, 2)[0]
        if seq >= len(self.peer.sent_at):
            return
        # The transit through rtpengine (arrival - the packet's own send time), so the generator's pacing is not
        # counted as jitter: what is left is the variation rtpengine and the kernel add.
        transit = arrival - self.peer.sent_at[seq]
        if seq < WARMUP:  # the first half second: offers just finished, caches cold
            return
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16
            self.max_jitter = max(self.max_jitter, self.jitter)
        self._transit = transit


def sdp(port: int) -> str:
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def port_of(text: str) -> int:
    return int(next(line for line in text.splitlines() if line.startswith("m=audio")).split()[1])


async def run_step(client: NgClient, pid: int, calls: int, seconds: float, record: bool) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    legs: list[tuple[str, Leg, Leg]] = []
    by_fd: dict[int, Leg] = {}
    for i in range(calls):
        a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        la, lb = Leg(a, 2 * i + 1), Leg(b, 2 * i + 2)
        la.peer, lb.peer = lb, la
        callid = f"bench-{record}-{calls}-{i}"
        offer = await client.offer(callid, "a", sdp(a.getsockname()[1]), record=record)
        answer = await client.answer(callid, "a", "b", sdp(b.getsockname()[1]))
        la.dest, lb.dest = port_of(answer), port_of(offer)
        legs.append((callid, la, lb))
        for leg in (la, lb):
            by_fd[leg.sock.fileno()] = leg

    def readable(leg: Leg) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = leg.sock.recvmsg(2048, 64)
            except BlockingIOError:
                return
            arrival = time.time()
            for level, kind, value in ancillary:  # the kernel's arrival time: not this loop's lateness
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    arrival = sec + nsec / 1e9
            leg.on_packet(data, arrival)

    for leg in by_fd.values():
        loop.add_reader(leg.sock.fileno(), readable, leg)
    packets = int(seconds / PTIME)
    for leg in by_fd.values():
        leg.sent_at = [0.0] * packets
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    lag = 0.0
    for n in range(packets):
        due = t0 + n * PTIME
        lag = max(lag, time.monotonic() - due)
        for _, la, lb in legs:
            for leg in (la, lb):
                header = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, leg.ssrc)
                try:
                    leg.sent_at[n] = time.time()  # type: ignore[index]  # sendto hands it to the kernel now
                    leg.sock.sendto(header + PAYLOAD, ("127.0.0.1", leg.dest))
                    leg.sent += 1
                except BlockingIOError:
                    pass
        await asyncio.sleep(max(0.0, t0 + (n + 1) * PTIME - time.monotonic()))
    await asyncio.sleep(0.3)  # the last packets in flight
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    counted = sent = received = 0
    for callid, la, lb in legs:
        stats = await client.query(callid)
        for tag in stats.get("tags", {}).values():
            for m in tag.get("medias", []):
                for s in m.get("streams", []):
                    if "RTP" in s.get("flags", []):
                        counted += int(s["stats"]["packets"])
        sent += la.sent + lb.sent
        received += la.received + lb.received
        await client.delete(callid, "a")
    for leg in by_fd.values():
        loop.remove_reader(leg.sock.fileno())
        leg.sock.close()
    jitter_ms = max(leg.max_jitter for leg in by_fd.values()) * 1000
    loss = max(1 - counted / sent, 1 - received / max(counted, 1), 0.0) * 100
    return {"calls": calls, "loss": loss, "jitter": jitter_ms, "cpu_per_call": cpu / wall / calls * 100,
            "cpu_total": cpu / wall * 100, "lag_ms": lag * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--start", type=int, default=25)
    parser.add_argument("--max", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-media-") as tmp:
        sup = RtpengineSupervisor(RtpengineConfig(home=Path(tmp), port_min=20000, port_max=29999))
        await sup.start()
        client = sup.client(timeout=2.0, retries=1)
        assert sup.pid is not None
        print(f"media bench: rtpengine userspace, G.711 PCMU 20 ms, {args.seconds:g} s per step, "
              f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}")
        print("goal: loss < 0.1 %, jitter < 20 ms (rtpengine's packet counts; RFC 3550 jitter of the transit)")
        print(f"{'calls':>6} | {'recorded: loss %':>16} {'jitter ms':>9} {'CPU/call %':>10} | "
              f"{'plain: loss %':>13} {'jitter ms':>9} {'CPU/call %':>10} | generator lag ms")
        best = {True: 0, False: 0}
        calls = args.start
        try:
            while calls <= args.max:
                row = {}
                for record in (True, False):
                    row[record] = await run_step(client, sup.pid, calls, args.seconds, record)
                    if row[record]["loss"] < 0.1 and row[record]["jitter"] < 20:
                        best[record] = calls
                r, p = row[True], row[False]
                lag = max(r["lag_ms"], p["lag_ms"])
                note = "  (generator-bound)" if lag > 20 else ""
                print(f"{calls:>6} | {r['loss']:>16.3f} {r['jitter']:>9.2f} {r['cpu_per_call']:>10.3f} | "
                      f"{p['loss']:>13.3f} {p['jitter']:>9.2f} {p['cpu_per_call']:>10.3f} | {lag:.1f}{note}",
                      flush=True)
                if best[True] < calls and best[False] < calls:
                    break
                calls *= 2
        finally:
            await client.close()
            await sup.stop()
        print(f"held within the goal: recorded {best[True]} concurrent calls, without recording {best[False]}")


if __name__ == "__main__":
    asyncio.run(main())
