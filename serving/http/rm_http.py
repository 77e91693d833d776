"""HTTP pieces of the RM page: security headers, responses, the form reader, the outcome form's
checks, Bearer keys for `tasks.json` and list-reading errors as pages (`serving.http.rm_page`
handles
the requests)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from keepwell.pii import NameIndex
from serving.http.api import charset_of
from serving.http.paths import BodyTimeout
from serving.http.rm_views import OUTCOME_LABELS
from serving.planning.lists import ListFormatError, NoList
from serving.records.keys import KeyStore, KeyStoreError, Principal, parse_bearer
from serving.records.outcomes import OUTCOMES, note_problem

log = logging.getLogger("keepwell.serving.rm")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FORM_LIMIT = 4096  # bytes of a form body (a 200-character note and a token fit many times)
_FORM = "application/x-www-form-urlencoded"


class PageError(Exception):
    """An answer other than the page asked for: a status, a title and a message for the user."""

    def __init__(self, status: int, title: str, message: str, code: str = "invalid_request"):
        super().__init__(message)
        self.status, self.title, self.message, self.code = status, title, message, code


def html(
    body: str, status: int = 200, cookie: str | None = None, headers: dict | None = None
) -> Response:
    response = Response(body, status_code=status, media_type="text/html; charset=utf-8")
    response.headers.update({**SECURITY_HEADERS, **(headers or {})})
    if cookie is not None:
        response.headers.append("set-cookie", cookie)
    return response


def redirect(location: str, cookie: str | None = None) -> Response:
    return html("", 303, cookie, {"Location": location})


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), default=str)
    response = Response(body, status_code=status, media_type="application/json")
    response.headers.update(SECURITY_HEADERS)
    return response


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (first value of each), at most `FORM_LIMIT` bytes."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _FORM:
        raise PageError(415, "Unsupported form", f"Send the form as {_FORM}.")
    if charset_of(request.headers.get("content-type", "")) not in (None, "utf-8", "utf8"):
        raise PageError(415, "Unsupported form", "Send the form as UTF-8.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_LIMIT:
                raise PageError(413, "Form too large", f"A form is at most {FORM_LIMIT} bytes.")
    except BodyTimeout:
        raise PageError(408, "Form timed out", "The form stopped arriving.") from None
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "Unreadable form", "The form could not be read.") from None
    return {k: v[0] for k, v in parsed.items()}


def field_problem(outcome: str, note: str, names: NameIndex | None = None) -> str | None:
    """Why the outcome form cannot be stored (naming the field, never quoting it), or None; the
    note's rule is the outcome store's (`serving.records.outcomes.note_problem`)."""
    if outcome not in OUTCOMES:
        allowed = ", ".join(OUTCOME_LABELS[o].lower() for o in OUTCOMES)
        return f"Field 'outcome': choose one of {allowed}."
    problem = note_problem(note, names)
    if problem:
        return f"Field 'note': {problem.removeprefix('note: ')}."
    return None


@contextlib.contextmanager
def reading_lists() -> Iterator[None]:
    """Turn list-reading errors into pages: 404 for a missing list, 503 for a broken one."""
    try:
        yield
    except NoList as exc:
        raise PageError(404, "No list", str(exc), "not_found") from None
    except ListFormatError as exc:  # the file and column go to the server log, not the caller
        log.error("lists unavailable: %s", exc)
        raise PageError(
            503,
            "Lists unavailable",
            "The list files cannot be read; the reason is in the server log.",
            "unavailable",
        ) from None
    except OSError as exc:  # the planner replaced the folder while it was read
        log.warning("list read failed: %s", exc)
        raise PageError(
            503, "Lists unavailable", "The lists are being rewritten; try again.", "unavailable"
        ) from None


def bearer_principal(keys: KeyStore, request: Request) -> Principal:
    """The caller of an `Authorization: Bearer <key>` request; 401 (or 503) as a `PageError`."""
    try:
        principal = keys.authenticate(parse_bearer(request.headers.get("authorization")))
    except KeyStoreError:
        log.exception("the key store cannot be read")
        raise PageError(503, "", "the key store cannot be read; try again", "unavailable") from None
    if principal is None:
        detail = "send a valid, unrevoked API key as 'Authorization: Bearer <key>'"
        raise PageError(401, "", detail, "unauthorized")
    return principal


@functools.cache
def stylesheet() -> bytes:
    return resources.files("serving.http").joinpath("static/rm.css").read_bytes()
