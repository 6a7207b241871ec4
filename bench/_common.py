"""Helpers shared by the benchmarks: free ports, starting servers, waiting for health, CPU time and RSS, wrk."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, headers: dict[str, str] | None = None) -> float:
    """Seconds until ``url`` answers 200."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system): steadier than wall time on a machine others load."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of a process and of its children, theirs, ... (a supervisor and its workers)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_seconds(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:  # gone meanwhile
            continue
    return total


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wrk(url: str, seconds: int, connections: int = 32, headers: dict[str, str] | None = None,
        script: str | None = None) -> float:
    """Requests per second measured by wrk (2 threads); ``script``: a wrk Lua script's path (its requests)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script is not None:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m, out
    return float(m.group(1))
