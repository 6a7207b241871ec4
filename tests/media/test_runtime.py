"""Media from vpbx's settings: its own supervised rtpengine, an operator-run one, or none."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vpbx.settings import Settings
from vpbx.telephony.media.runtime import MediaRuntime
from vpbx.telephony.media.supervisor import RtpengineConfig, RtpengineSupervisor

pytestmark = pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine-daemon is not installed")


def settings(tmp_path: Path, **kw: object) -> Settings:
    base = 45000 + (os.getpid() % 100) * 50  # apart from test_rtpengine's ranges
    return Settings(home=tmp_path, rtpengine_port_min=base, rtpengine_port_max=base + 49, **kw)  # type: ignore[arg-type]


async def test_off_means_no_media(tmp_path: Path) -> None:
    assert await MediaRuntime.start(settings(tmp_path, rtpengine="off")) is None


async def test_vpbx_starts_supervises_and_stops_its_own_rtpengine(tmp_path: Path) -> None:
    runtime = await MediaRuntime.start(settings(tmp_path), on_digit=lambda c, t, d: None)
    assert runtime is not None and runtime.supervisor is not None and runtime.keypad is not None
    try:
        pid = runtime.supervisor.pid
        assert pid is not None and await runtime.media.available()
        assert f"--dtmf-log-dest=127.0.0.1:{runtime.keypad.address[1]}" in runtime.supervisor.command()
        assert (tmp_path / "rtpengine" / "rtpengine.pid").read_text().strip() == str(pid)
        assert runtime.media.recording_dir == tmp_path / "rtpengine" / "recordings"
    finally:
        await runtime.stop()
    with pytest.raises(ProcessLookupError):  # gone (reaped by the supervisor's wait)
        os.kill(pid, 0)


async def test_an_operator_run_rtpengine_is_used_as_configured(tmp_path: Path) -> None:
    operator = RtpengineSupervisor(RtpengineConfig(home=tmp_path / "operator", port_min=44000 + os.getpid() % 50 * 10,
                                                   port_max=44009 + os.getpid() % 50 * 10))
    await operator.start()
    try:
        host, port = operator.address
        runtime = await MediaRuntime.start(settings(tmp_path / "vpbx", rtpengine=f"{host}:{port}",
                                                    rtpengine_recordings=operator.config.recording_dir))
        assert runtime is not None and runtime.supervisor is None
        try:
            assert await runtime.media.available()
            assert runtime.media.recording_dir == operator.config.recording_dir
        finally:
            await runtime.stop()
    finally:
        await operator.stop()
