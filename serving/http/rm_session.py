"""Sessions of the RM page: a signed cookie that every BentoML worker accepts, and its CSRF token.

The cookie holds the key id, the role, an expiry time and a random session id, as base64url JSON,
followed by an HMAC-SHA256 of that text under a secret shared by the workers: 32 random bytes in a
file beside the key store (`keys/session.secret`), created once with mode 0600 by whichever worker
gets there first (a hard link makes the creation atomic, so two workers cannot pick different
secrets). The key itself (the token the RM typed) is never in the cookie.

A cookie is accepted only when its MAC matches, it has not expired and its key is still active in
the key store with the same role: revoking a key ends its sessions on the next request.

The CSRF token of a session is an HMAC of the cookie value under the same secret (another domain
prefix), sent as a hidden form field: a page of another site can neither read it nor compute it.
Deleting the secret file ends every session.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from serving.records.keys import KeyStore, Principal, RoleError, parse_role

COOKIE = "kw_rm_session"
COOKIE_PATH = "/rm"
SESSION_HOURS = 8
SECRET_BYTES = 32
SECRET_NAME = "session.secret"
_SESSION_DOMAIN = b"keepwell-rm-session-v1\0"
_CSRF_DOMAIN = b"keepwell-rm-csrf-v1\0"
_MAX_COOKIE = 1024


class SessionError(RuntimeError):
    """The session secret cannot be created or read; the message names the file."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte session secret at `path`, created (mode 0600) when it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:  # mkstemp creates the file with mode 0600
                out.write(secrets.token_bytes(SECRET_BYTES))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another worker won: use its secret
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SessionError(f"cannot read the session secret {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SessionError(
            f"the session secret {path} is readable by other users; run 'chmod 600 {path}'"
        )
    if len(data) != SECRET_BYTES:
        raise SessionError(
            f"the session secret {path} has {len(data)} bytes, not {SECRET_BYTES}; delete it "
            "and a new one is created (every RM signs in again)"
        )
    return data


@dataclass(frozen=True)
class Session:
    """A valid session: who it is and the cookie value it came from."""

    principal: Principal
    cookie: str
    expires: dt.datetime


class Sessions:
    """Issues and checks session cookies and CSRF tokens against the key store."""

    def __init__(self, keys: KeyStore, secret_path: Path | None = None):
        self.keys = keys
        self.secret_path = secret_path or keys.path.with_name(SECRET_NAME)
        self._secret: bytes | None = None
        self._lock = threading.Lock()
        self._keys_stamp: tuple[int, int, int] | None = None
        self._roles: dict[str, str] = {}

    def _active_roles(self) -> dict[str, str]:
        """Key id -> role of the active keys, rebuilt when the key store file changes (one stat
        per request, as the key store itself does), so a revocation counts on the next request."""
        try:
            st = self.keys.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp is None or stamp != self._keys_stamp:
                self._roles = {k.key_id: k.role for k in self.keys.list() if k.active}
                self._keys_stamp = stamp
            return self._roles

    def _key(self) -> bytes:
        with self._lock:
            if self._secret is None or not self.secret_path.exists():
                self._secret = load_or_create_secret(self.secret_path)
            return self._secret

    def _mac(self, domain: bytes, text: str) -> str:
        return _b64(hmac.new(self._key(), domain + text.encode("ascii"), hashlib.sha256).digest())

    def issue(self, principal: Principal, now: dt.datetime | None = None) -> Session:
        """A new session for `principal` (already authenticated by its key)."""
        expires = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(hours=SESSION_HOURS)
        payload = {
            "k": principal.key_id,
            "r": principal.role,
            "e": int(expires.timestamp()),
            "s": secrets.token_hex(16),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return Session(principal, f"{body}.{self._mac(_SESSION_DOMAIN, body)}", expires)

    def check(self, cookie: str | None, now: dt.datetime | None = None) -> Session | None:
        """The session behind a cookie value, or None when it is missing, forged, expired or its
        key is revoked (or no longer has the role the cookie names)."""
        if not cookie or len(cookie) > _MAX_COOKIE or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            if not hmac.compare_digest(self._mac(_SESSION_DOMAIN, body), mac):
                return None
            payload = json.loads(_unb64(body))
            key_id, role, expiry = payload["k"], payload["r"], int(payload["e"])
            rm_id = parse_role(role).rm_id
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, RoleError):
            return None
        expires = dt.datetime.fromtimestamp(expiry, dt.UTC)
        if expires <= (now or dt.datetime.now(dt.UTC)):
            return None
        if self._active_roles().get(key_id) != role:
            return None
        return Session(Principal(key_id=key_id, role=role, rm_id=rm_id), cookie, expires)

    def csrf(self, session: Session) -> str:
        """The CSRF token of a session (the hidden field of its forms)."""
        return self._mac(_CSRF_DOMAIN, session.cookie)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(session), token or "")

    def cookie_header(self, session: Session | None, secure: bool) -> str:
        """The Set-Cookie value that stores `session` (or, for None, deletes the cookie)."""
        if session is None:
            value, age = "", 0
        else:
            value, age = session.cookie, SESSION_HOURS * 3600
        flags = f"Path={COOKIE_PATH}; Max-Age={age}; HttpOnly; SameSite=Strict"
        return f"{COOKIE}={value}; {flags}" + ("; Secure" if secure else "")
