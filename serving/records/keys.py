"""API keys with roles: created once, stored as hashes, checked on every request.

A key looks like `kw_<key_id>_<secret part>`: `key_id` is 12 hex characters that name the key in
listings and audit entries (not secret), the secret part is 32 random bytes from `secrets`,
URL-safe base64. The store holds, per key, the key id, role, label, creation and revocation times
and `sha256("keepwell-api-key-v1\\0" + key)`, never the key itself.

Why a plain SHA-256 and not scrypt or PBKDF2: slow, salted hashes protect low-entropy secrets
(passwords) against guessing from a stolen hash file. These secrets are 256 random bits, so
guessing is out of reach whatever the hash costs, and a rainbow table cannot exist for them; a
per-key salt or a deliberately slow hash would add nothing but latency (scrypt at its usual
settings costs tens of milliseconds, the whole per-request budget is 10 ms). The domain prefix
keeps these hashes from matching any other use of SHA-256.

Roles: `crm` scores any customer, `rm:<rm_id>` only the customers of that relationship manager,
`admin` anything, including admin endpoints.

The store is one JSON file (`config.paths.keys`, default `keys/keys.json`), replaced atomically on
every change (readers never see half a file; the temporary file is created mode 0600) and edited
under an exclusive `flock` on a sibling `.lock` file, so two `keepwell keys` commands cannot lose
each other's change. Readers (the service's workers) re-read the file when its inode, size or
modification time changes, so a revocation takes effect on the next request, without a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keepwell.io import write_text
from keepwell.words import ID_MAX_LENGTH, ID_PATTERN

KEY_PREFIX = "kw"
HASH_DOMAIN = b"keepwell-api-key-v1\0"
STORE_FORMAT = 1
ROLE_HELP = "roles are crm, admin or rm:<rm_id> (e.g. rm:RM00001)"
LABEL_PATTERN = r"^[A-Za-z0-9 _.:/-]{1,80}$"
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_ID = re.compile(ID_PATTERN)

RoleKind = Literal["crm", "rm", "admin"]


class RoleError(ValueError):
    """A role string that is not `crm`, `admin` or `rm:<rm_id>`; the message says why."""


class KeyStoreError(RuntimeError):
    """A key store that cannot be read or changed; the message names the file or key id."""


@dataclass(frozen=True)
class Role:
    kind: RoleKind
    rm_id: str | None = None

    def __str__(self) -> str:
        return f"rm:{self.rm_id}" if self.kind == "rm" else self.kind


def parse_role(text: str) -> Role:
    """`crm`, `admin` or `rm:<rm_id>`, exactly (no case folding, no spaces), else `RoleError`."""
    if not isinstance(text, str):
        raise RoleError(f"a role is a string, got {type(text).__name__}; {ROLE_HELP}")
    if text in ("crm", "admin"):
        return Role(text)  # type: ignore[arg-type]
    if text.startswith("rm:"):
        rm_id = text[3:]
        if not rm_id:
            raise RoleError(f"role {text!r} needs an RM id after 'rm:'; {ROLE_HELP}")
        if len(rm_id) > ID_MAX_LENGTH or not _ID.match(rm_id):
            raise RoleError(
                f"role {text!r}: the RM id must be 1-{ID_MAX_LENGTH} letters, digits, "
                f"'_', '.', ':' or '-'; {ROLE_HELP}"
            )
        return Role("rm", rm_id)
    hint = ""
    if text.strip().lower() in ("crm", "admin") or text.strip().lower().startswith("rm:"):
        hint = " (roles are lower case, without spaces)"
    raise RoleError(f"unknown role {text!r}{hint}; {ROLE_HELP}")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and role."""

    key_id: str
    role: str
    rm_id: str | None = None

    @property
    def kind(self) -> RoleKind:
        return parse_role(self.role).kind

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_score(self, customer_rm_id: str | None) -> bool:
        """Whether this caller may score a customer of RM `customer_rm_id`.

        `crm` and `admin` may score anyone; `rm:X` only customers whose RM is X. A customer whose
        RM is not known (`None`, e.g. an id the store does not have) is nobody's customer: an RM
        may not score it.
        """
        if self.role in ("crm", "admin"):
            return True
        return self.rm_id is not None and customer_rm_id == self.rm_id


@dataclass(frozen=True)
class KeyInfo:
    """What `list()` shows about a key: never the key, never its hash."""

    key_id: str
    role: str
    label: str | None
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def parse_bearer(header_value: str | None) -> str | None:
    """The key from an `Authorization: Bearer <key>` header value; None if absent or malformed.

    The scheme is case-insensitive (RFC 7235); exactly one space-free token must follow it.
    """
    if not header_value:
        return None
    parts = header_value.strip().split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def hash_key(secret: str) -> str:
    """The stored form of a key: hex SHA-256 of the domain prefix and the key."""
    return hashlib.sha256(HASH_DOMAIN + secret.encode("utf-8")).hexdigest()


def split_key(secret: str) -> str | None:
    """The key id inside a well-formed key (`kw_<12 hex>_<rest>`), else None."""
    prefix, sep, rest = secret.partition("_")
    if prefix != KEY_PREFIX or not sep:
        return None
    key_id, sep, token = rest.partition("_")
    if not sep or not token or not _KEY_ID.match(key_id):
        return None
    return key_id


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_DUMMY_HASH = hash_key("kw_000000000000_not-a-key")


class KeyStore:
    """API keys in a JSON file at `path` (created on the first `create`)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, dict[str, Any]] = {}

    # -- reading ------------------------------------------------------------------------------
    def _read_file(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"cannot read the key store {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != STORE_FORMAT:
            raise KeyStoreError(
                f"{self.path} is not a Keepwell key store (format {STORE_FORMAT} expected)"
            )
        records = data.get("keys")
        if not isinstance(records, list):
            raise KeyStoreError(f"{self.path}: 'keys' must be a list")
        return {r["key_id"]: r for r in records}

    def _current(self) -> dict[str, dict[str, Any]]:
        """The records, re-read when the file changed since the last look (one stat call)."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._records = self._read_file() if stamp is not None else {}
                self._stamp = stamp
            return self._records

    def list(self) -> list[KeyInfo]:
        """Every key, active and revoked, oldest first."""
        return [_info(r) for r in self._current().values()]

    def authenticate(self, secret: str | None) -> Principal | None:
        """The caller behind `secret`, or None for a missing, malformed, unknown or revoked key.

        The hash comparison is `hmac.compare_digest`, and a key with an unknown id is still hashed
        and compared (against a dummy), so timing does not tell a wrong secret from a wrong id.
        """
        if not secret or len(secret) > 200:
            return None
        key_id = split_key(secret)
        record = self._current().get(key_id) if key_id else None
        expected = record["hash"] if record else _DUMMY_HASH
        matches = hmac.compare_digest(hash_key(secret), expected)
        if not matches or record is None or record.get("revoked_at") is not None:
            return None
        role = parse_role(record["role"])
        return Principal(key_id=record["key_id"], role=str(role), rm_id=role.rm_id)

    # -- changing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read, change and atomically rewrite the file under an exclusive lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                records = self._read_file()
                yield records
                payload = {"format": STORE_FORMAT, "keys": list(records.values())}
                write_text(self.path, json.dumps(payload, indent=2) + "\n")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def create(self, role: str, *, label: str | None = None) -> tuple[str, str]:
        """A new key for `role`: returns (key_id, key). The key is not stored; show it once."""
        parsed = parse_role(role)
        if label is not None and not re.match(LABEL_PATTERN, label):
            raise ValueError(
                "a label is 1-80 characters: letters, digits, spaces and _ . : / - "
                "(name the system, not a person)"
            )
        with self._editing() as records:
            key_id = secrets.token_hex(6)
            while key_id in records:
                key_id = secrets.token_hex(6)
            secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            records[key_id] = {
                "key_id": key_id,
                "role": str(parsed),
                "label": label,
                "created_at": _now(),
                "revoked_at": None,
                "hash": hash_key(secret),
            }
        return key_id, secret

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key (idempotent: an already revoked key keeps its revocation time)."""
        with self._editing() as records:
            if key_id not in records:
                ids = sorted(records)
                known = ", ".join(ids[:10]) + (
                    f" and {len(ids) - 10} more" if len(ids) > 10 else ""
                )
                known = known or "none"
                raise KeyStoreError(f"no key {key_id!r} in {self.path} (known: {known})")
            if records[key_id].get("revoked_at") is None:
                records[key_id]["revoked_at"] = _now()
            return _info(records[key_id])


def _info(record: dict[str, Any]) -> KeyInfo:
    fields = KeyInfo.__dataclass_fields__
    return KeyInfo(**{k: record.get(k) for k in fields})
