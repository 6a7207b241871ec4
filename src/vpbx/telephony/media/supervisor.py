"""rtpengine for vpbx: started and supervised by vpbx, or run by the operator.

Started by vpbx (``VPBX_RTPENGINE`` empty): Debian's ``rtpengine`` in the foreground, userspace forwarding
only (``--table=-1``: no kernel module, nothing to load as root), media on ``interface`` (the configured
address, default 127.0.0.1), the ng control port on loopback, pcap recordings under
``<home>/rtpengine/recordings``, its pid and log in ``<home>/rtpengine/``. A crash is restarted (with a
growing pause, capped) for as long as vpbx runs; while it is down, :class:`~vpbx.telephony.media.service.Media`
answers "media unavailable" and calls go on unanchored.

Run by the operator (``VPBX_RTPENGINE=host:port``): vpbx only pings it. Its configuration must have
``listen-ng`` at that address, ``recording-method = pcap`` and ``recording-dir`` where vpbx reads
recordings (``VPBX_RTPENGINE_RECORDINGS``; same machine or a shared directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from vpbx.telephony.media.rtpengine import MediaUnavailable, NgClient

log = logging.getLogger("vpbx.media")

BINARY = "rtpengine"


class RtpengineMissing(RuntimeError):
    """The rtpengine binary is not installed (Debian: rtpengine-daemon)."""


def free_udp_port(host: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RtpengineConfig:
    home: Path  # <store home>/rtpengine
    interface: str = "127.0.0.1"
    ng_host: str = "127.0.0.1"
    ng_port: int = 0  # 0: a free port chosen at start
    port_min: int = 30000
    port_max: int = 40000
    log_level: int = 5  # 5 notice: calls and errors, no per-packet noise
    binary: str = BINARY
    delete_delay: int = 0  # seconds a deleted call stays queryable
    dtmf_log_dest: str = ""  # host:port of a DtmfListener: rtpengine reports key presses there (JSON over UDP)

    @property
    def recording_dir(self) -> Path:
        return self.home / "recordings"

    @property
    def pidfile(self) -> Path:
        return self.home / "rtpengine.pid"

    @property
    def logfile(self) -> Path:
        return self.home / "rtpengine.log"


class RtpengineSupervisor:
    """Starts rtpengine, waits until it answers ``ping``, restarts it when it exits; ``stop`` ends it."""

    def __init__(self, config: RtpengineConfig, *, restart: bool = True, max_backoff: float = 10.0) -> None:
        self.config = config
        self.restart = restart
        self.max_backoff = max_backoff
        self.ng_port = config.ng_port
        self.cli_port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._started = asyncio.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self.config.ng_host, self.ng_port

    @property
    def pid(self) -> int | None:
        return None if self.process is None or self.process.returncode is not None else self.process.pid

    def client(self, **kwargs: float | int) -> NgClient:
        return NgClient(self.config.ng_host, self.ng_port, **kwargs)  # type: ignore[arg-type]

    def command(self) -> list[str]:
        c = self.config
        # --config-file=none: Debian's /etc/rtpengine/rtpengine.conf (kernel table 0, fixed HTTP/CLI ports) is for
        # its system service, not for ours.
        return [c.binary, "--config-file=none", "--foreground", "--log-stderr", "--no-log-timestamps", "--table=-1",
                f"--interface={c.interface}", f"--listen-ng={c.ng_host}:{self.ng_port}",
                f"--listen-cli={c.ng_host}:{self.cli_port}",
                f"--port-min={c.port_min}", f"--port-max={c.port_max}", f"--pidfile={c.pidfile}",
                f"--log-level={c.log_level}", "--recording-method=pcap", f"--recording-dir={c.recording_dir}",
                f"--delete-delay={c.delete_delay}",
                *([f"--dtmf-log-dest={c.dtmf_log_dest}"] if c.dtmf_log_dest else [])]

    async def start(self, within: float = 10.0) -> None:
        """Spawn rtpengine and return once it answers ``ping`` (RtpengineMissing / MediaUnavailable if not)."""
        if shutil.which(self.config.binary) is None:
            raise RtpengineMissing(f"{self.config.binary!r} not found: install Debian's rtpengine-daemon, "
                                   f"or run one and set VPBX_RTPENGINE=host:port")
        self.config.recording_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        await self._spawn()
        await self._wait_ready(within)
        self._task = asyncio.create_task(self._supervise(), name="rtpengine-supervisor")

    async def _spawn(self) -> None:
        if self.ng_port == 0 or self.process is not None:
            # A fresh port per spawn when we chose it: a dying process may still hold the old one.
            self.ng_port = self.config.ng_port or free_udp_port(self.config.ng_host)
        # Its CLI port (rtpengine-ctl) is always opened, default 9900: a free one so several can run.
        self.cli_port = free_udp_port(self.config.ng_host, socket.SOCK_STREAM)
        self.config.home.mkdir(parents=True, exist_ok=True)
        logfile = open(self.config.logfile, "ab")  # noqa: ASYNC230 - an append open is instant; the child keeps it
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                start_new_session=True)  # its own process group: a ^C to vpbx is handled by vpbx's shutdown
        finally:
            logfile.close()
        log.info("rtpengine started", extra={"pid": self.process.pid, "ng": f"{self.config.ng_host}:{self.ng_port}",
                                             "interface": self.config.interface})

    async def _wait_ready(self, within: float) -> None:
        client = NgClient(self.config.ng_host, self.ng_port, timeout=0.2, retries=0, quiet=True)
        deadline = asyncio.get_running_loop().time() + within
        try:
            while True:
                if self.process is not None and self.process.returncode is not None:
                    raise MediaUnavailable(f"rtpengine exited with {self.process.returncode} at start; "
                                           f"see {self.config.logfile}")
                try:
                    if await client.ping():
                        self._started.set()
                        return
                except MediaUnavailable:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise MediaUnavailable(f"rtpengine did not answer ping within {within:g} s; "
                                           f"see {self.config.logfile}")
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping or not self.restart:
                return
            log.error("rtpengine exited; restarting", extra={"returncode": code, "pause": backoff,
                                                             "logfile": str(self.config.logfile)})
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            self.restarts += 1
            try:
                await self._spawn()
                await self._wait_ready(10.0)
                backoff = 0.5
            except (MediaUnavailable, OSError) as exc:
                log.error("rtpengine restart failed", extra={"error": str(exc)})
                backoff = min(backoff * 2, self.max_backoff)

    async def stop(self, within: float = 5.0) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        proc = self.process
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), within)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.pidfile)
