"""A bounded HTTP load client and server process helpers for the benchmarks (127.0.0.1 only).

`load(url, bodies, headers, cell, requests, time_limit)` sends at most `requests` POSTs with
`cell.concurrency` requests in flight (aiohttp, one event loop), stops early at `time_limit`
seconds, and records per-request latencies of the 200 answers and a count per error status or
exception. Servers are started in their own process group and stopped by that group's id.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 300.0


@dataclass
class Cell:
    target: str
    ids: int
    concurrency: int
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # from the server's access log

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    def server_pct(self, q: float) -> float:
        return float(np.percentile(self.server_ms, q)) if self.server_ms else float("nan")


ACCESS_LINE = re.compile(r"path=(/[^,]*),[^)]*\) \(status=(\d+),[^)]*\) ([\d.]+)ms")


def access_log_ms(text: str, path: str, last: int) -> list[float]:
    """Durations (ms) of the last `last` requests to `path` in a BentoML access log: the time
    the server spent, without the client's share of the machine."""
    found = [float(ms) for p, _, ms in ACCESS_LINE.findall(text) if p == path]
    return found[-last:] if last else []


# -- servers -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> float:
    import httpx

    began = time.perf_counter()
    while time.perf_counter() - began < START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - began
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}: not ready in {START_TIMEOUT:.0f} s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop the process group this benchmark started (by its id)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def server_rss_mb(process: subprocess.Popen) -> float:
    import psutil

    root = psutil.Process(process.pid)
    procs = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


# -- the load client ---------------------------------------------------------------------------
async def _load(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    cell: Cell,
    requests: int,
    time_limit: float,
) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=cell.concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    counter = iter(range(requests))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for body in bodies[: min(20, len(bodies))]:  # warm up connections and code paths
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
        deadline = time.perf_counter() + time_limit
        began = time.perf_counter()

        async def worker() -> None:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        url, data=bodies[i % len(bodies)], headers=headers
                    ) as r:
                        await r.read()
                        status = r.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    cell.errors[type(exc).__name__] = cell.errors.get(type(exc).__name__, 0) + 1
                    continue
                if status == 200:
                    cell.ok += 1
                    cell.latencies.append(time.perf_counter() - t0)
                else:
                    cell.errors[str(status)] = cell.errors.get(str(status), 0) + 1

        await asyncio.gather(*(worker() for _ in range(cell.concurrency)))
        cell.seconds = time.perf_counter() - began


def load(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    cell: Cell,
    requests: int,
    time_limit: float,
) -> Cell:
    asyncio.run(_load(url, bodies, headers, cell, requests, time_limit))
    return cell
