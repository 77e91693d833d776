"""HTTP pieces of the RM page: security headers, responses, the form reader, the outcome form's
checks, Bearer keys for `tasks.json` and list-reading errors as pages (`serving.http.rm_page`
handles
the requests)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from serving.http.rm_views import OUTCOME_LABELS
from serving.planning.lists import ListFormatError, NoList
from serving.records.keys import KeyStore, KeyStoreError, Principal, parse_bearer
from serving.records.outcomes import NOTE_MAX, OUTCOMES

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
# Notes hold no personal data: dates and times are fine, 6+ digits in a row (spaces, dashes, dots
# and brackets between them allowed) look like a phone, account or card number.
_DATE_OR_TIME = re.compile(
    r"\b(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{1,2}:\d{2})\b"
)
_LONG_NUMBER = re.compile(r"\d(?:[\s\-./()+]*\d){5,}")
_EMAIL = re.compile(r"\S@\S")


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
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise PageError(413, "Form too large", f"A form is at most {FORM_LIMIT} bytes.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "Unreadable form", "The form could not be read.") from None
    return {k: v[0] for k, v in parsed.items()}


def field_problem(outcome: str, note: str) -> str | None:
    """Why the outcome form cannot be stored (naming the field), or None."""
    if outcome not in OUTCOMES:
        allowed = ", ".join(OUTCOME_LABELS[o].lower() for o in OUTCOMES)
        return f"Field 'outcome': choose one of {allowed}."
    text = " ".join(note.split())
    if len(text) > NOTE_MAX:
        return f"Field 'note': at most {NOTE_MAX} characters (it has {len(text)})."
    if _LONG_NUMBER.search(_DATE_OR_TIME.sub(" ", text)):
        return "Field 'note': no phone, account or card numbers (no personal data in notes)."
    if _EMAIL.search(text):
        return "Field 'note': no e-mail addresses (no personal data in notes)."
    return None


@contextlib.contextmanager
def reading_lists() -> Iterator[None]:
    """Turn list-reading errors into pages: 404 for a missing list, 503 for a broken one."""
    try:
        yield
    except NoList as exc:
        raise PageError(404, "No list", str(exc), "not_found") from None
    except ListFormatError as exc:
        log.error("lists unavailable: %s", exc)
        raise PageError(503, "Lists unavailable", str(exc), "unavailable") from None
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
