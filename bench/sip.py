"""SIP signalling through vpbx against Kamailio (a stateful proxy), with sipp on both ends, in the same run.

sipp plays the carrier (``bench/sip/carrier.xml``): it calls a number whose department rings sipp phones
(``bench/sip/phone.xml``: registered with REGISTER first, ``bench/sip/register.xml``; they answer at once and
hang up after ``--hold`` ms). Two sides, the same sipp load:

* **vpbx**: ``vpbx serve --sip 127.0.0.1:PORT`` on a fresh SQLite store with the demo company; the carrier is a
  carrier peer (``vpbx carrier add``); ``--phones`` employees with SIP passwords, in one department (EVENLY) that
  the main number rings; the phones register digest-authenticated. Calls go through the engine (the CRM is off).
  An employee takes one call at a time, so the department has as many phones as calls are up at once (by default
  the most the steps need, +10%); they all register with their Contact at one sipp UAS.
* **Kamailio** (the signalling limit): ``bench/sip/kamailio.cfg``, a minimal stateful proxy (tm, record-routed,
  usrloc) on loopback with its own pid file and working dir; the phones register (no auth); each INVITE goes to the
  next phone in turn. It does what a B2BUA's signalling must at least do, without a PBX behind it.

Figures, for each side:

* **calls/s with 0 failed**: sipp calls at rising rates (``--rates``) for ``--seconds`` each; the highest rate at
  which every call was set up, answered and hung up (sipp's exit status 0 and its failed-call count 0) and the
  answers kept up (answered at >= 90% of the rate asked, first to last answer: queued calls are not a rate);
* **setup time** p50/p99 (INVITE sent -> 200 OK received, sipp's response time, 1 ms resolution) at 100 calls/s
  and at the highest rate;
* before the steps, 40 calls at 20 calls/s warm each side up (not counted);
* **max concurrent calls held**: ``--concurrent`` calls placed at the highest rate the side sustained (at most
  ``--concurrent-rate``) with a hold long enough for all of them to be up together, for rising counts; the highest
  count with 0 failures (sipp's peak CurrentCall shown).
* ``--no-media-too``: vpbx a second time with ``--rtpengine off``, beside: what anchoring every call costs.

Goals (issue 16): >= 100 calls/s with 0 failures, >= 1,000 concurrent calls, p99 setup < 100 ms.

    .venv/bin/python bench/sip.py [--seconds 5] [--rates 50,100,200,400] [--concurrent 500,1000]
                                  [--phones 0] [--hold 1000] [--side both|vpbx|kamailio] [--trace --keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, wait_http
from _stores import VPBX, load, vpbx

HERE = Path(__file__).parent / "sip"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KEY = "bench-key-0123456789abcdef"
DOMAIN = "bench.local"
NUMBER = "74951234567"  # the demo company's main number; vpbx routes it to the bench department
PASSWORD = "bench-Phone-pw-1"
console = Console()


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sip_answers(port: int, timeout: float = 20.0) -> None:
    """Wait until something answers an OPTIONS on 127.0.0.1:``port`` (any response will do)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        me = s.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msg = (f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKprobe{n}\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:probe@127.0.0.1:{me}>;tag=p{n}\r\nTo: <sip:probe@127.0.0.1:{port}>\r\n"
                   f"Call-ID: probe{n}@bench\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError, OSError):
                if s.recv(4096).startswith(b"SIP/2.0 "):
                    return
            time.sleep(0.1)
    raise TimeoutError(f"nothing answers SIP on 127.0.0.1:{port}")


@dataclass
class Side:
    name: str
    port: int  # where the carrier and the phones send (UDP on 127.0.0.1)
    domain: str  # the phones' AOR domain
    logins: list[str]
    password: str | None  # digest password of every phone; None: no authentication
    carrier_port: int  # the port the carrier sends from (vpbx trusts it by address and port)
    results: dict[str, Any] = field(default_factory=dict)


REGISTER_RATE = 50  # phones registering per second (at most 20 at a time)
TRACE: list[str] = []  # --trace: sipp keeps every message in <scenario>_<pid>_messages.log in its work dir


def sipp(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sipp", *args, "-nostdin", *TRACE], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


@contextlib.contextmanager
def phones(side: Side, hold_ms: int, tmp: Path, port: int | None = None, register: bool = True) -> Iterator[int]:
    """The phones: every login registered (one sipp run, its Contact at one port), then one sipp UAS on that port
    answering all of their calls."""
    port = port or udp_port()
    work = tmp / f"phones-{side.name}-{port}-{hold_ms}"
    work.mkdir(parents=True, exist_ok=True)
    if register:
        users = work / "users.csv"
        # sipp reads a field holding the whole [authentication ...] keyword (it does not nest fields in it)
        users.write_text("SEQUENTIAL\n" + "".join(
            f"{login};[authentication username={login} password={side.password or 'none'}]\n"
            for login in side.logins))
        n = len(side.logins)
        done = sipp(["-sf", str(HERE / "register.xml"), "-i", "127.0.0.1", "-p", str(port), f"127.0.0.1:{side.port}",
                     "-inf", str(users), "-key", "domain", side.domain, "-r", str(REGISTER_RATE), "-l", "20",
                     "-m", str(n), "-timeout", f"{n / REGISTER_RATE * 2 + 30:.0f}", "-timeout_error", "-trace_err"],
                    work, n / REGISTER_RATE * 2 + 60)
        if done.returncode != 0:
            errors = "".join(p.read_text(errors="replace")[-1500:] for p in work.glob("*_errors.log"))
            raise SystemExit(f"{side.name}: the phones did not all register (sipp {done.returncode}):\n{errors}")
    uas = subprocess.Popen(["sipp", "-sf", str(HERE / "phone.xml"), "-i", "127.0.0.1", "-p", str(port),
                            "-d", str(hold_ms), "-nostdin", "-l", "100000", *TRACE],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        if uas.poll() is not None:
            raise SystemExit(f"{side.name}: the phones' sipp exited ({uas.returncode})")
        yield port
    finally:
        uas.terminate()
        try:
            uas.wait(10)
        except subprocess.TimeoutExpired:
            uas.kill()


@dataclass
class Load:
    rate: float  # asked
    calls: int
    ok: int
    failed: int
    reached: float  # calls/s sipp reached (first to last setup)
    p50: float
    p99: float
    peak: int  # sipp's highest CurrentCall
    status: int

    @property
    def clean(self) -> bool:
        """Every call completed, none failed, and the answers kept up with the calls (a PBX that queues them,
        answering later and later, does not sustain the rate even when nothing fails)."""
        kept_up = self.calls < 10 or self.reached >= 0.9 * self.rate
        return self.status == 0 and self.failed == 0 and self.ok == self.calls and kept_up


def carrier(side: Side, rate: float, calls: int, tmp: Path, tag: str) -> Load:
    """sipp as the carrier: ``calls`` calls at ``rate`` calls/s to the number; what came of them."""
    work = tmp / f"load-{side.name}-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    timeout = calls / rate + 60
    done = sipp(["-sf", str(HERE / "carrier.xml"), "-i", "127.0.0.1", "-p", str(side.carrier_port),
                 f"127.0.0.1:{side.port}", "-s", NUMBER, "-r", f"{rate:g}", "-m", str(calls),
                 "-l", str(calls + 10), "-timeout", f"{timeout:.0f}", "-timeout_error", "-trace_rtt",
                 "-rtt_freq", "1", "-trace_stat", "-fd", "1", "-stf", "stat.csv"], work, timeout + 30)
    rtts: list[float] = []
    stamps: list[float] = []
    for path in work.glob("*_rtt.csv"):
        with path.open() as f:
            for row in csv.reader(f, delimiter=";"):
                if row and row[0][:1].isdigit():
                    stamps.append(float(row[0]))
                    rtts.append(float(row[1]))
    ok = failed = peak = 0
    stat = work / "stat.csv"
    if stat.exists():
        with stat.open() as f:
            stats = list(csv.DictReader(f, delimiter=";"))
        for line in stats:
            peak = max(peak, int(line.get("CurrentCall") or 0))
        if stats:
            ok, failed = int(stats[-1]["SuccessfulCall(C)"]), int(stats[-1]["FailedCall(C)"])
    reached = (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000) if len(stamps) > 1 and \
        max(stamps) > min(stamps) else 0.0
    q = statistics.quantiles(rtts, n=100, method="inclusive") if len(rtts) > 1 else [rtts[0] if rtts else 0.0] * 99
    return Load(rate, calls, ok, failed, reached, q[49], q[98], peak, done.returncode)


# --- the two sides ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def kamailio(tmp: Path, n: int) -> Iterator[Side]:
    work = tmp / "kamailio"
    work.mkdir()
    port = udp_port()
    pid_file = work / "kamailio.pid"
    log = (work / "kamailio.log").open("wb")
    started = subprocess.run([KAMAILIO, "-f", str(HERE / "kamailio.cfg"), "-A", f"PHONES={n}",
                              "-l", f"udp:127.0.0.1:{port}", "-P", str(pid_file), "-w", str(work), "-Y", str(work),
                              "-m", "512", "-M", "32"], stdout=log, stderr=log, check=False)
    if started.returncode != 0:
        raise SystemExit(f"kamailio did not start: {(work / 'kamailio.log').read_text()[-2000:]}")
    try:
        sip_answers(port)
        yield Side("Kamailio", port, "127.0.0.1", [f"phone{i}" for i in range(n)], None, udp_port())
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        log.close()


def vpbx_has_sip() -> bool:
    done = subprocess.run([*VPBX, "serve", "--help"], capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    return "--sip" in done.stdout


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(base + path, method=method, headers={"X-API-KEY": KEY,
                                                                        "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


@contextlib.contextmanager
def vpbx_side(tmp: Path, n: int, media: bool = True) -> Iterator[Side]:
    """vpbx with its media (every call anchored in the rtpengine it starts), or without (``--rtpengine off``)."""
    home = tmp / ("vpbx" if media else "vpbx-no-media")
    home.mkdir()
    url = f"sqlite:///{home / 'vpbx.db'}"
    carrier_port = udp_port()
    vpbx(url, home, "domain", "create", DOMAIN, "--api-key", KEY)  # the demo company
    vpbx(url, home, "carrier", "add", "bench-carrier", f"127.0.0.1:{carrier_port}")
    http, sip_port = free_port(), udp_port()
    log = (home / "serve.log").open("wb")
    # VPBX_BENCH_PROFILE=FILE: the server runs under cProfile (its asyncio thread), written at exit (for debugging)
    profile = os.environ.get("VPBX_BENCH_PROFILE")
    cmd = [sys.executable, "-m", "cProfile", "-o", profile, *VPBX[1:]] if profile else VPBX
    server = subprocess.Popen([*cmd, "serve", "--port", str(http), "--sip", f"127.0.0.1:{sip_port}", "--no-demo",
                               "--db", url, "--home", str(home), *(["--rtpengine", "off"] if not media else [])],
                              stdout=log, stderr=log)
    base = f"http://127.0.0.1:{http}"
    try:
        wait_http(f"{base}/healthz", timeout=60)
        sip_answers(sip_port)
        logins = [f"phone{i}" for i in range(n)]

        def employee(i: int) -> None:
            api(base, "POST", "/crmapi/v1/users", {"name": f"Bench phone {i}", "login": logins[i]})
            api(base, "PUT", f"/crmapi/v1/users/{logins[i]}", {"password": PASSWORD})  # its SIP password

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(employee, range(n)))
        group = api(base, "POST", "/crmapi/v1/groups", {
            "name": "Bench", "call_order": "EVENLY",
            "users": [{"login": login, "calls_enable": True} for login in logins]})
        api(base, "POST", f"/crmapi/v1/telnums/{NUMBER}", {"type": "group", "group": str(group["id"]),
                                                          "greeting": False})
        yield Side("vpbx" if media else "vpbx, no media", sip_port, DOMAIN, logins, PASSWORD, carrier_port)
    except BaseException:
        log.flush()
        console.print(f"[red]vpbx serve log:[/red]\n{(home / 'serve.log').read_text(errors='replace')[-3000:]}")
        raise
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- the measurements ------------------------------------------------------------------------------------------


def measure(side: Side, args: argparse.Namespace, tmp: Path, progress: Progress) -> None:
    rates = [float(r) for r in args.rates.split(",")]
    counts = [int(c) for c in args.concurrent.split(",")]
    task = progress.add_task(f"{side.name}: calls/s", total=len(rates) + len(counts))
    best: Load | None = None
    at100: Load | None = None
    steps: list[Load] = []
    with phones(side, args.hold, tmp) as phone_port:
        # Warm-up, not counted (both sides alike): a fresh server's first calls import code and fill its caches
        # (the number's route, the department's roster), a one-off that a server in service paid long ago.
        progress.update(task, description=f"{side.name}: warm-up")
        carrier(side, 20, 40, tmp, "warmup")
        for rate in rates:
            progress.update(task, description=f"{side.name}: {rate:g} calls/s for {args.seconds}s")
            got = carrier(side, rate, max(int(rate * args.seconds), 1), tmp, f"rate{rate:g}")
            steps.append(got)
            progress.advance(task)
            if rate == 100:
                at100 = got
            if not got.clean:
                break
            best = got
        progress.update(task, completed=len(rates))
    side.results.update(best=best, at100=at100, steps=steps)
    held: Load | None = None
    tries: list[Load] = []
    # The calls are placed at the rate the side sustained (at most --concurrent-rate): what is measured here is
    # how many calls it holds, not again how fast it sets them up.
    rate_c = min(args.concurrent_rate, best.rate) if best is not None else args.concurrent_rate
    for count in counts:
        hold = int((count / rate_c + 5) * 1000)  # every call still up when the last one is answered
        progress.update(task, description=f"{side.name}: {count} calls held")
        with phones(side, hold, tmp, port=phone_port, register=False):  # still registered there
            got = carrier(side, rate_c, count, tmp, f"held{count}")
        tries.append(got)
        progress.advance(task)
        if not got.clean:
            break
        held = got
    progress.update(task, completed=len(rates) + len(counts))
    side.results.update(held=held, held_tries=tries)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(sides: list[Side], args: argparse.Namespace) -> None:
    print(f"\nsipp carrier -> number -> department of {args.phones} sipp phones (answer at once, hang up after "
          f"{args.hold} ms), UDP on loopback, {load()}")
    for side in sides:
        print(f"\n{side.name}: each step ('held': all calls up together, placed at the rate it sustained, at most "
              "--concurrent-rate)")
        print(f"{'step':>6}{'calls/s asked':>14}{'reached':>9}{'calls':>7}{'ok':>7}{'failed':>7}{'p50 ms':>8}"
              f"{'p99 ms':>8}{'peak':>6}")
        steps = [("rate", s) for s in side.results.get("steps", [])]
        for kind, s in [*steps, *(("held", s) for s in side.results.get("held_tries", []))]:
            print(f"{kind:>6}{s.rate:14g}{s.reached:9.0f}{s.calls:7d}{s.ok:7d}{s.failed:7d}{s.p50:8.0f}"
                  f"{s.p99:8.0f}{s.peak:6d}{'' if s.clean else '  FAILED'}")
    if not sides:
        return
    names = [s.name for s in sides]

    def row(label: str, values: list[float | None], spec: str, ratio: bool = True) -> None:
        cells = "".join(f"{fmt(v, spec):>16}" for v in values)
        r = ""  # vpbx (the first side) against Kamailio (the last)
        if ratio and len(values) >= 2 and values[0] is not None and values[-1]:
            r = f"{values[0] / values[-1]:8.2f}"
        print(f"{label:<34}{cells}{r}")

    def pick(side: Side, key: str, attr: str) -> float | None:
        got = side.results.get(key)
        return None if got is None else float(getattr(got, attr))

    print(f"\n{'':<34}" + "".join(f"{n:>16}" for n in names) + ("   ratio" if len(sides) >= 2 else ""))
    row("calls/s with 0 failed (asked)", [pick(s, "best", "rate") for s in sides], ".0f")
    row("  reached by sipp", [pick(s, "best", "reached") for s in sides], ".0f")
    row("setup p50 ms at that rate", [pick(s, "best", "p50") for s in sides], ".0f", ratio=False)
    row("setup p99 ms at that rate", [pick(s, "best", "p99") for s in sides], ".0f", ratio=False)
    row("setup p50 ms at 100 calls/s", [pick(s, "at100", "p50") for s in sides], ".0f", ratio=False)
    row("setup p99 ms at 100 calls/s", [pick(s, "at100", "p99") for s in sides], ".0f", ratio=False)
    row("max concurrent calls held", [pick(s, "held", "calls") for s in sides], ".0f")
    row("  sipp's peak CurrentCall", [pick(s, "held", "peak") for s in sides], ".0f")
    print("goals for vpbx: >= 100 calls/s with 0 failed, >= 1,000 concurrent, p99 setup < 100 ms; ratio = vpbx / "
          "Kamailio (sipp and both sides share the 2 cores)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5, help="seconds of calls per rate step")
    ap.add_argument("--rates", default="50,100,200,400", help="calls/s steps, rising")
    ap.add_argument("--concurrent", default="500,1000", help="calls held together, rising")
    ap.add_argument("--concurrent-rate", type=float, default=200.0, help="calls/s while filling up, at most (else "
                    "the highest rate the side sustained)")
    ap.add_argument("--phones", type=int, default=0, help="phones in the department; 0: as many as the calls up "
                    "at once need (an employee takes one call at a time)")
    ap.add_argument("--hold", type=int, default=1000, help="ms a phone talks before hanging up")
    ap.add_argument("--side", choices=["both", "vpbx", "kamailio"], default="both")
    ap.add_argument("--no-media-too", action="store_true", help="also vpbx with --rtpengine off: what anchoring "
                    "every call in rtpengine costs")
    ap.add_argument("--trace", action="store_true", help="sipp logs every message (slow: for debugging)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (sipp's logs, vpbx's serve.log)")
    args = ap.parse_args()
    if args.trace:
        TRACE.append("-trace_msg")
    if args.phones <= 0:
        up = max(max(int(c) for c in args.concurrent.split(",")),
                 int(max(float(r) for r in args.rates.split(",")) * (args.hold / 1000 + 0.5)))
        args.phones = int(up * 1.1) + 2
    for tool in ("sipp",):
        if shutil.which(tool) is None:
            raise SystemExit("sipp is needed: apt-get install sip-tester")
    if not Path(KAMAILIO).exists():
        raise SystemExit("kamailio is needed: apt-get install kamailio")
    print(f"{time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.processor() or platform.machine()}, "
          f"{load()}")
    sides: list[Side] = []
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    folder = contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(
        prefix="vpbx-bench-sip-")
    with folder as d, Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                               transient=True) as progress:
        tmp = Path(d)
        if args.side in ("both", "vpbx"):
            if vpbx_has_sip():
                with vpbx_side(tmp, args.phones) as side:
                    measure(side, args, tmp, progress)
                    sides.append(side)
                if args.no_media_too:
                    with vpbx_side(tmp, args.phones, media=False) as side:
                        measure(side, args, tmp, progress)
                        sides.append(side)
            else:
                print("vpbx: NOT measured: this vpbx serve has no --sip option yet (Kamailio only)")
        if args.side in ("both", "kamailio"):
            with kamailio(tmp, args.phones) as side:
                measure(side, args, tmp, progress)
                sides.append(side)
    report(sides, args)


if __name__ == "__main__":
    main()
