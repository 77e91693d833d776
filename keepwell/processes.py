"""Processes that die with the one the operator started.

`keepwell serve` becomes BentoML's arbiter (`os.execve`, same pid), which forks the workers. A
worker that outlives the arbiter (kill -9 of `keepwell serve`) keeps the port and keeps
answering, so each worker asks Linux to send it SIGTERM when its parent dies
(`prctl(PR_SET_PDEATHSIG)`) as soon as the service module is imported, then checks that its
parent is still the process `keepwell serve` started (`SERVE_PID_ENV`): a parent that died before
the request was made would never signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

SERVE_PID_ENV = "KEEPWELL_SERVE_PID"
PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(environ: dict[str, str] | None = None) -> str:
    """In a process started (directly) by the `keepwell serve` process whose pid is in
    `KEEPWELL_SERVE_PID`: get SIGTERM when that parent dies, and exit now if it already has.

    No-op outside a served worker (no variable: tests, `bentoml serve` run by hand) and in the
    `keepwell serve` process itself. Returns what it did ("off", "parent", "armed")."""
    env = os.environ if environ is None else environ
    expected = env.get(SERVE_PID_ENV, "")
    if not expected.isdigit():
        return "off"
    if os.getpid() == int(expected):  # the arbiter (keepwell serve after execve) itself
        return "parent"
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != int(expected):  # orphaned before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
        os._exit(1)
    return "armed"
