"""kill -9 of `keepwell serve` (a real server on 127.0.0.1): its worker dies with it, the port is
freed within seconds and a restart on the same port comes up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

import httpx
import psutil
import pytest

from keepwell.processes import SERVE_PID_ENV, die_with_parent
from tests.fixtures.serving import LiveServer, _wait_ready, free_port, start_serve

FREED_WITHIN = 10.0


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_orphans(children: list[psutil.Process]) -> None:
    """Stop the workers this test's server started (by pid; they set up their own process
    group), should any have outlived it."""
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()  # psutil checks the pid still is the same process (its create time)


def _stop_group(process: subprocess.Popen) -> None:
    """Stop the process group this test started (by its id)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def test_die_with_parent_is_off_outside_a_served_worker():
    assert die_with_parent({}) == "off"
    assert die_with_parent({SERVE_PID_ENV: str(os.getpid())}) == "parent"


def test_kill_9_of_keepwell_serve_leaves_nothing_listening_and_a_restart_comes_up(
    serving_setup, tmp_path
):
    if os.environ.get("KEEPWELL_SKIP_SERVER_TEST") == "1":
        pytest.skip("KEEPWELL_SKIP_SERVER_TEST=1")
    port = free_port()
    first = start_serve(serving_setup, port, tmp_path / "first.log")
    second, children = None, []
    try:
        _wait_ready(LiveServer(f"http://127.0.0.1:{port}", port, tmp_path / "first.log", first))
        children = psutil.Process(first.pid).children(recursive=True)
        assert children, "keepwell serve started no worker"
        os.kill(first.pid, signal.SIGKILL)  # the process the operator started, alone
        first.wait(timeout=10)
        deadline = time.monotonic() + FREED_WITHIN
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), f"port {port} still answers {FREED_WITHIN:.0f} s after kill -9"
        second = start_serve(serving_setup, port, tmp_path / "second.log")
        server = LiveServer(f"http://127.0.0.1:{port}", port, tmp_path / "second.log", second)
        _wait_ready(server)
        assert httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200
    finally:
        _stop_group(first)
        _stop_orphans(children)
        if second is not None:
            _stop_group(second)
