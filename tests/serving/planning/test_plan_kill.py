"""`keepwell plan` killed (-9) at random moments, then one full run: the day's lists are the old
set or the new set, byte-identical to a clean run, no temporary folder is left, and there is one
audit entry per list set that went live. Plus the swap's crash points one by one, in process."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from keepwell import swap
from serving.planning.job import plan_day
from serving.planning.write import PLAN_ENDPOINT, check_identical, recover_lists
from serving.records.audit import AuditLog

KILLS = 10


def _leftovers(root):
    return sorted(
        p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".swap.lock"
    )


def _plan_entries(ws, config, day) -> int:
    log = AuditLog(ws.path(config.paths.audit_log))
    try:
        return sum(
            1 for e in log.entries() if e.endpoint == PLAN_ENDPOINT and e.features_as_of == day
        )
    finally:
        log.close()


@pytest.fixture
def copied(serving_setup, planned, tmp_path):
    """A copy of the planned serving workspace whose lists of the day are an older set
    (`--rank-by risk`)."""
    from keepwell.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(serving_setup.workspace.root, root)
    config = serving_setup.config
    ws = Workspace.open(root, config)
    shutil.rmtree(ws.path(config.paths.lists))
    reference_new, reference_old = tmp_path / "new", tmp_path / "old"
    shutil.copytree(plan_day(ws, config, planned.day).folder, reference_new)  # a clean run
    shutil.copytree(plan_day(ws, config, planned.day, rank_by="risk").folder, reference_old)
    assert check_identical(reference_old, reference_new), "the old set must differ from the new"
    return ws, config, reference_old, reference_new


def _command(ws, config_file, day):
    return [
        sys.executable,
        "-m",
        "cli",
        "--workspace",
        str(ws.root),
        "--config",
        str(config_file),
        "plan",
        "--date",
        day.isoformat(),
    ]


def _run_and_kill(command, env, delay, after_line):
    """Start a plan run; kill -9 it `delay` s after start (or after its output shows
    `after_line`). Returns True when it was killed before finishing."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    seen = threading.Event()

    def read():
        for line in process.stdout:
            if after_line and after_line in line.decode(errors="replace"):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after_line:
        seen.wait(timeout=120)
    time.sleep(delay)
    killed = process.poll() is None
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reader.join(timeout=5)
    return killed


@pytest.mark.slow
def test_ten_kills_then_a_full_run_leave_the_old_or_the_new_set_and_one_audit_entry_each(
    copied, planned, serving_setup
):
    ws, config, reference_old, reference_new = copied
    day, lists_root = planned.day, ws.path(config.paths.lists)
    folder = lists_root / day.isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEPWELL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    command = _command(ws, serving_setup.config_file, day)
    rng = random.Random(19)
    began = time.monotonic()  # a clean run's length sets the range of the kill moments
    subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    took = time.monotonic() - began
    recover_lists(lists_root, AuditLog(ws.path(config.paths.audit_log)))  # nothing to do
    shutil.rmtree(folder)
    shutil.copytree(reference_old, folder)  # the old set again (its audit entry is counted)
    live = _plan_entries(ws, config, day)  # the sets that went live so far
    outcomes = []
    for i in range(KILLS):
        before = _plan_entries(ws, config, day)
        # half at any moment of the run, half in its writing phase (after the reasons)
        if i % 2 == 0:
            killed = _run_and_kill(command, env, rng.uniform(0.1, 0.95) * took, None)
        else:
            killed = _run_and_kill(command, env, rng.uniform(0.0, 0.2), "explained")
        journalled = (lists_root / f".{day.isoformat()}{swap.JOURNAL_SUFFIX}").exists()
        recover_lists(
            lists_root, AuditLog(ws.path(config.paths.audit_log))
        )  # what a run does first
        after = _plan_entries(ws, config, day)
        is_old = check_identical(reference_old, folder) == []
        is_new = check_identical(reference_new, folder) == []
        assert is_old != is_new, f"kill {i}: the lists are neither the old nor the new set"
        assert _leftovers(lists_root) == [], f"kill {i}"
        assert after - before in (0, 1), f"kill {i}: {after - before} audit entries for one run"
        if journalled or (is_new and live == 1 and after == before):
            assert after == before + 1, f"kill {i}: a set went live without its audit entry"
        live += after - before
        outcomes.append((killed, "new" if is_new else "old", after - before))
    result = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stdout.decode()[-2000:]
    assert check_identical(reference_new, folder) == []
    assert _leftovers(lists_root) == []
    assert _plan_entries(ws, config, day) == live + 1
    print("kill outcomes (killed, set after recovery, audit entries added):", outcomes)


def test_each_crash_point_of_the_swap_recovers_to_one_set_and_one_audit_entry(
    copied, planned, monkeypatch
):
    """Kill points the random kills rarely hit, in process: after the journal, between the two
    renames, after the swap before the audit entry, after the audit entry before the clean-up."""
    import serving.planning.write as write

    ws, config, reference_old, reference_new = copied
    day, lists_root = planned.day, ws.path(config.paths.lists)
    folder = lists_root / day.isoformat()
    real_replace, real_went_live, real_done = os.replace, write.audit_went_live, swap.done

    class Killed(BaseException):
        pass

    def crash_on_rename(n):
        """os.replace that 'kills' the run at its n-th rename inside the lists folder (the
        journal's own atomic write is the first, the live folder to .old the second)."""
        calls = {"n": 0}

        def fake(a, b):
            if Path(b).parent == lists_root:
                calls["n"] += 1
                if calls["n"] == n:
                    raise Killed
            return real_replace(a, b)

        return fake

    scenarios = {
        "after the journal, before any rename": lambda: monkeypatch.setattr(
            swap.os, "replace", crash_on_rename(2)
        ),
        "between the two renames": lambda: monkeypatch.setattr(
            swap.os, "replace", crash_on_rename(3)
        ),
        "after the swap, before the audit entry": lambda: monkeypatch.setattr(
            write, "audit_went_live", lambda *a, **k: (_ for _ in ()).throw(Killed())
        ),
        "after the audit entry, before the clean-up": lambda: monkeypatch.setattr(
            swap, "done", lambda *a, **k: (_ for _ in ()).throw(Killed())
        ),
    }
    for name, arm in scenarios.items():
        before = _plan_entries(ws, config, day)
        assert check_identical(reference_old, folder) == []
        arm()
        with pytest.raises(Killed):
            plan_day(ws, config, day)
        monkeypatch.setattr(swap.os, "replace", real_replace)
        monkeypatch.setattr(write, "audit_went_live", real_went_live)
        monkeypatch.setattr(swap, "done", real_done)
        assert _leftovers(lists_root), name  # the kill left something behind
        recover_lists(lists_root, AuditLog(ws.path(config.paths.audit_log)))
        assert check_identical(reference_new, folder) == [], name  # rolled forward: the new set
        assert _leftovers(lists_root) == [], name
        assert _plan_entries(ws, config, day) == before + 1, name
        # put the old set back for the next scenario (as a run with --rank-by risk would)
        plan_day(ws, config, day, rank_by="risk")
        assert check_identical(reference_old, folder) == []
