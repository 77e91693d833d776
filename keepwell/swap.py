"""Crash-safe replacement of a whole folder, journalled so that a later run finishes it.

`keepwell.io.atomic_dir` leaves `.<name>.*.tmp` (a kill while writing) or `.<name>.old` (a kill
between its two renames: no folder at all) behind, and nobody cleans them. Here:

1. `staging(target)` yields `.<name>.<random>.tmp`; the caller writes the whole new folder.
2. `commit(target, tmp, note)` writes the journal `.<name>.swap.json` (atomically: the commit
   point; it names the temporary folder and carries the caller's `note`), then swaps: the live
   folder to `.<name>.old`, the temporary folder to `<name>`. The caller then does what must
   follow exactly once for a folder that went live (an audit entry), then `done(target)`
   removes `.<name>.old` and the journal.
3. `recover(root, pattern)`, run first by the next writer under the same `lock(root)`: every
   journal is rolled forward (its temporary folder is complete, so it goes live if it has not)
   and returned, so the caller completes its follow-up (checking first whether it was already
   done); then every `.<name>.*.tmp` (never committed) is removed, and a `.<name>.old` without a
   journal is removed when `<name>` exists, or renamed back when it does not.

So after any kill the folder is the old set or the new set, never a mix, and nothing is left once
a later run has recovered. `pattern` limits all this to names the caller owns (e.g. dates).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keepwell.io import write_text

JOURNAL_SUFFIX = ".swap.json"
LOCK_NAME = ".swap.lock"


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _journal(target: Path) -> Path:
    return target.with_name(f".{target.name}{JOURNAL_SUFFIX}")


@contextlib.contextmanager
def lock(root: Path) -> Iterator[None]:
    """An exclusive lock on `root` for one writer at a time (released by the kernel on a kill)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A new temporary folder beside `target`, removed if the block fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def commit(target: Path, tmp: Path, note: dict[str, Any]) -> dt.datetime:
    """Journal the swap of `tmp` into `target` (the commit point), then do it; returns the
    journal's time (a recovery passes it back in the entry's "at")."""
    at = dt.datetime.now(dt.UTC)
    entry = {"tmp": tmp.name, "at": at.isoformat(), "note": note}
    write_text(_journal(target), json.dumps(entry, sort_keys=True) + "\n")
    _roll_forward(target, entry)
    return at


def _roll_forward(target: Path, entry: dict[str, Any]) -> None:
    tmp, old = target.with_name(entry["tmp"]), _old(target)
    if not tmp.is_dir():  # swapped already: `target` is the new folder
        return
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)  # a stale one; the live folder is `target`
        os.replace(target, old)
    os.replace(tmp, target)


def done(target: Path) -> None:
    """The follow-up of a committed swap is done: remove `.<name>.old`, then the journal."""
    shutil.rmtree(_old(target), ignore_errors=True)
    _journal(target).unlink(missing_ok=True)


def recover(root: Path, pattern: str) -> list[tuple[Path, dict[str, Any]]]:
    """Finish interrupted swaps in `root` and remove leftovers (see the module doc); returns
    (target, journal entry) for every swap whose follow-up the caller must check and complete
    before calling `done(target)`. `pattern` is a regular expression for the target names."""
    if not root.is_dir():
        return []
    names = re.compile(pattern)
    pending = []
    for path in sorted(root.glob(f".*{JOURNAL_SUFFIX}")):
        name = path.name[1 : -len(JOURNAL_SUFFIX)]
        if not names.fullmatch(name):
            continue
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # cannot happen (written atomically); never guess
            raise RuntimeError(f"unreadable swap journal {path}: resolve it by hand") from None
        _roll_forward(root / name, entry)
        pending.append((root / name, entry))
    journalled = {t.name for t, _ in pending}
    for path in sorted(root.glob(".*")):
        match = re.fullmatch(r"\.+(.+?)\.(?:[^/]*\.tmp|old)", path.name)
        if match is None or not names.fullmatch(match.group(1)):
            continue
        name = match.group(1)
        if path.name.endswith(".tmp"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        elif name not in journalled:
            if (root / name).exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.replace(path, root / name)
    return pending
