"""A SQLite file several processes share (the audit log, the outcome store): WAL mode, a busy
timeout, one connection per process (re-opened after a fork, and after a failed write: a
connection opened while the file was read-only stays read-only), and a cheap, cached probe of
whether the file can be written now (`/readyz`)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


def _retry(action, attempts: int = 20) -> None:
    """Run `action`, retrying a locked database (WAL switch, schema creation) briefly."""
    for attempt in range(attempts):
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def open_wal(path: Path, script: str, *, durable: bool = False) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (created with its folder) shared by several
    processes: WAL mode, a busy timeout, autocommit, `synchronous` FULL when `durable` else
    NORMAL, and the tables and triggers of `script` created in one transaction (retried while
    another process holds the lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")

    def create() -> None:
        # One transaction in the script: `executescript` commits any transaction open before it.
        try:
            conn.executescript("BEGIN IMMEDIATE;" + script + "COMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    _retry(create)
    return conn


class SharedSqlite:
    """A SQLite file several processes write (`open_wal`): one connection per process, re-opened
    after a fork, shared by the process's threads under `_lock`; `SCRIPT` creates its tables and
    triggers, `PRAGMAS` run on each new connection."""

    SCRIPT = ""
    PRAGMAS: tuple[str, ...] = ()

    def __init__(self, path: Path | str, *, durable: bool = False):
        self.path = Path(path)
        self.durable = durable
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        conn = open_wal(self.path, self.SCRIPT, durable=self.durable)
        for pragma in self.PRAGMAS:
            conn.execute(pragma)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        """Forget the connection (under `_lock`): the next use opens a new one. After a failed
        write, a connection opened while the file was read-only would stay read-only for good."""
        if self._conn is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    def writable(self, max_age: float = 1.0) -> bool:
        """Whether the file can be written now: the file, its WAL and its folder writable and a
        write lock taken and released; cached `max_age` seconds (cheap enough for `/readyz`)."""
        now = time.monotonic()
        cached = getattr(self, "_probe", None)
        if cached is not None and now - cached[0] < max_age and cached[2] == os.getpid():
            return cached[1]
        ok = self._probe_write()
        self._probe = (now, ok, os.getpid())
        return ok

    def _probe_write(self) -> bool:
        paths = [self.path.parent, self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        if not all(os.access(p, os.W_OK) for p in paths if p.exists()):
            with self._lock:
                self._drop()
            return False
        with self._lock:
            try:
                conn = self._connect()
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("BEGIN IMMEDIATE")
                try:  # a write that is rolled back: a read-only connection refuses it
                    conn.execute(f"PRAGMA user_version = {int(version)}")
                finally:
                    conn.execute("ROLLBACK")
                return True
            except (sqlite3.Error, OSError):
                self._drop()
                return False
