"""The audit log's seal: its newest call, kept outside the database, so that a cut tail shows.

The hash chain of `serving.audit` shows a call that was changed, or removed or inserted in the
middle; it cannot show the newest calls deleted, since what is left is still a valid chain.
After every call the log therefore writes `<log>.seal`: the newest call's id and hash, signed
with an HMAC under a secret beside it (`<log>.seal.key`, 32 random bytes, mode 0600), so the
seal cannot be rewritten to match a shortened log without that secret. Keep the secret apart
from the log (or back it up elsewhere) to make that a real barrier.

Several worker processes append to one log: the seal only moves forward (an advisory lock on
`<log>.seal.lock`, then the newer call wins), and it is written after the call is committed, so
a process killed in between leaves the seal one call behind (`unsealed`, not tampering). Without
`durable` an operating-system crash can lose the newest committed calls but keep their seal:
`verify` then reports them missing, which is what they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEAL_KEY_BYTES = 32
HashOf = Callable[[int], "str | None"]


class SealError(RuntimeError):
    """The seal or its secret cannot be read or written, or the seal is forged."""


@dataclass(frozen=True)
class Seal:
    call_id: int
    row_hash: str


def _load_or_create_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(SEAL_KEY_BYTES))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read the audit seal's secret {path}: {exc}") from None
    if len(data) != SEAL_KEY_BYTES:
        raise SealError(f"the audit seal's secret {path} has {len(data)} bytes, not 32")
    return data


class AuditSeal:
    """The seal of the audit log at `log_path`."""

    def __init__(self, log_path: Path):
        self.path = log_path.with_name(log_path.name + ".seal")
        self.key_path = log_path.with_name(log_path.name + ".seal.key")
        self._lock_path = log_path.with_name(log_path.name + ".seal.lock")
        self._key: bytes | None = None

    def _mac(self, call_id: int, row_hash: str) -> str:
        if self._key is None:
            self._key = _load_or_create_key(self.key_path)
        message = f"{call_id}:{row_hash}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def read(self) -> Seal | None:
        """The sealed newest call, None when no seal was written yet; `SealError` if forged."""
        try:
            record = json.loads(self.path.read_text("utf-8"))
            seal = Seal(int(record["call_id"]), str(record["row_hash"]))
            mac = str(record["mac"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SealError(f"the audit seal {self.path} cannot be read: {exc}") from None
        if not self.key_path.exists():
            raise SealError(f"the audit seal's secret {self.key_path} is missing")
        if not hmac.compare_digest(mac, self._mac(seal.call_id, seal.row_hash)):
            raise SealError(f"the audit seal {self.path} was not written by this log (bad HMAC)")
        return seal

    def advance(self, call_id: int, row_hash: str, hash_of: HashOf) -> None:
        """Seal call `call_id` unless a newer call is sealed already, and only while the sealed
        call is still in the log unchanged (`hash_of(id)` reads a call's hash from the log): a
        seal that no longer matches stays as it is, for `verify` to report."""
        with contextlib.suppress(SealError):
            self._advance(call_id, row_hash, hash_of)

    def _advance(self, call_id: int, row_hash: str, hash_of: HashOf) -> None:
        record = {"call_id": call_id, "row_hash": row_hash, "mac": self._mac(call_id, row_hash)}
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            if current is not None and current.call_id >= call_id:
                return
            if current is not None and hash_of(current.call_id) != current.row_hash:
                return  # the log was changed behind its back: keep the evidence
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record), "utf-8")
            os.replace(tmp, self.path)
