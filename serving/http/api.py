"""The HTTP side of the scoring service: keys, limits, errors, the audit log and the OpenAPI
document. `serving.http.service` wires this into BentoML; the scoring is `serving.scoring.scorer`.

Every scoring call goes through `ScoringAPI.handle`, in this order, and is written to the audit
log with its final status, refusals included (ids are known from step 4 on). A 200 is answered
only after its audit row is written; when the audit log or the key store cannot be used the
answer is 503 and nothing is scored:

1. `Authorization: Bearer <key>` (`serving.records.keys.KeyStore`): none, unknown or revoked -> 401;
2. `Content-Type: application/json`, in UTF-8 (no charset or `charset=utf-8`) -> else 415 (so a
   multipart body is never parsed);
3. body size: `Content-Length` or the bytes read over the endpoint's limit -> 413; a body that
   stalls for `serving.http.paths.BODY_READ_TIMEOUT` seconds -> 408;
4. the strict request model (`serving.scoring.schemas`): any problem -> 422 naming every field;
5. access: an RM key and a customer outside that RM's book (unknown ids included) -> 403;
6. scoring on one worker thread per process (LightGBM uses one core; requests queue here).

Every 4xx body is an `ErrorBody`; nothing echoes a request value (it might be PII sent by mistake)
and nothing here logs a body. The audit log records the known customers of a call, and an unknown
id only when it holds no personal data (`serving.records.audit.recordable_ids`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from keepwell.config import load_config
from keepwell.pii import NameIndex
from keepwell.workspace import Workspace
from serving.http.openapi import document
from serving.http.paths import BODY_READ_TIMEOUT, BodyTimeout
from serving.records.audit import AuditLog, recordable_ids
from serving.records.keys import KeyStore, KeyStoreError, parse_bearer
from serving.scoring.schemas import (
    MAX_IDS_PER_REQUEST,
    ErrorBody,
    ErrorCode,
    FieldProblem,
    ScoreRequest,
    ScoreResponse,
    error_body,
    feature_rows_request_model,
    rows_as_records,
)
from serving.scoring.scorer import Forbidden, Scorer

if TYPE_CHECKING:
    from serving.records.audit import AuditLog
    from serving.records.keys import KeyStore, Principal
    from serving.scoring.scorer import Scorer

log = logging.getLogger("keepwell.serving")

SCORE = "/score"
FEATURES = "/score/features"
SCORING_PATHS = (SCORE, FEATURES)
# 1,000 ids of at most 64 characters are under 70 KB; 1,000 feature rows about 1.5 MB.
MAX_BODY_BYTES = {SCORE: 128 * 1024, FEATURES: 4 * 1024 * 1024}
INT64_MAX = 2**63 - 1
ENV_WORKSPACE, ENV_CONFIG, ENV_DATA = "KEEPWELL_WORKSPACE", "KEEPWELL_CONFIG", "KEEPWELL_DATA"
NO_STORE = {"Cache-Control": "no-store"}


class Refusal(Exception):
    """A request answered with a 4xx (or 503) `ErrorBody`."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        fields: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.body = ErrorBody(error=code, detail=detail, fields=list(fields))
        self.headers = headers

    def response(self) -> Response:
        return error_response(self.status, self.body, self.headers)


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def invalid(exc: ValidationError) -> Refusal:
    body = error_body(exc.errors(include_url=False, include_input=False))
    return Refusal(422, "invalid_request", body.detail, body.fields)


@dataclass
class Parsed:
    """A validated request: the ids it names and what the scorer needs."""

    ids: list[str]
    payload: Any


def charset_of(content_type: str) -> str | None:
    """The `charset` parameter of a Content-Type header (lower case), or None."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _content_type(request: Request) -> None:
    header = request.headers.get("content-type", "")
    media = header.split(";")[0].strip().lower()
    if media != "application/json":
        shown = "no Content-Type was sent" if not media else "got another media type"
        raise Refusal(
            415,
            "unsupported_media_type",
            f"send the body as JSON with 'Content-Type: application/json' ({shown})",
        )
    if charset_of(header) not in (None, "utf-8", "utf8"):
        raise Refusal(
            415, "unsupported_media_type", "send the body as UTF-8 (charset=utf-8 or none)"
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is known or seen to exceed `limit` bytes."""
    too_large = Refusal(
        413,
        "payload_too_large",
        f"the body is larger than {limit:,} bytes (at most {MAX_IDS_PER_REQUEST:,} "
        "customers per request)",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
    except BodyTimeout:
        raise Refusal(
            408, "request_timeout", f"the body stopped arriving for {BODY_READ_TIMEOUT:g} s"
        ) from None
    return bytes(body)


def _int64_problems(records: Sequence[dict[str, Any]]) -> list[FieldProblem]:
    """Integers outside int64 (JSON allows any size; the features are int64)."""
    return [
        FieldProblem(field=f"rows.{i}.{k}", problem="must fit in a 64-bit signed integer")
        for i, r in enumerate(records)
        for k, v in r.items()
        if type(v) is int and not -INT64_MAX - 1 <= v <= INT64_MAX
    ]


class ScoringAPI:
    """Authentication, limits, validation, scoring and audit for the scoring endpoints."""

    def __init__(
        self, scorer: Scorer, keys: KeyStore, audit: AuditLog, names: NameIndex | None = None
    ):
        self.scorer, self.keys, self.audit = scorer, keys, audit
        self.names = names  # the bank's customer names (`NameIndex.from_folder`)
        self.rows_model: type[BaseModel] = feature_rows_request_model(scorer.row_spec())
        self._limiter = anyio.CapacityLimiter(1)
        self._openapi: dict[str, Any] | None = None
        self._parsers: dict[str, Callable[[bytes], Parsed]] = {
            SCORE: self._parse_ids,
            FEATURES: self._parse_rows,
        }

    @classmethod
    def from_env(cls) -> ScoringAPI:
        """Load from the workspace and config named by KEEPWELL_WORKSPACE / KEEPWELL_CONFIG (and
        the data folder KEEPWELL_DATA), as `keepwell serve` sets them."""

        config = load_config(os.environ.get(ENV_CONFIG) or None)
        ws = Workspace.open(Path(os.environ.get(ENV_WORKSPACE) or "workspace"), config)
        scorer = Scorer.load(ws, config, data_dir=os.environ.get(ENV_DATA) or None)
        for note in scorer.notes:
            log.warning("%s", note)
        keys = KeyStore(ws.path(config.paths.keys))
        try:  # only the `name` column, once per worker
            names = NameIndex.from_folder(scorer.source.get("data"))
        except Exception as exc:  # the service still runs; notes keep the number/e-mail rules
            log.warning("no customer names for the note check (%s)", type(exc).__name__)
            names = NameIndex()
        return cls(scorer, keys, AuditLog(ws.path(config.paths.audit_log)), names)

    # -- parsing --------------------------------------------------------------------------------
    def _parse_ids(self, body: bytes) -> Parsed:
        try:
            req = ScoreRequest.model_validate_json(body)
        except ValidationError as exc:
            raise invalid(exc) from None
        return Parsed(list(req.customer_ids), list(req.customer_ids))

    def _parse_rows(self, body: bytes) -> Parsed:
        try:
            req = self.rows_model.model_validate_json(body)
        except ValidationError as exc:
            raise invalid(exc) from None
        records = rows_as_records(req.rows)  # type: ignore[attr-defined]
        problems = _int64_problems(records)
        if problems:
            detail = f"{len(problems)} invalid field(s): {problems[0].field}"
            raise Refusal(422, "invalid_request", detail, problems)
        return Parsed([r["customer_id"] for r in records], records)

    def authenticate(self, request: Request) -> Principal:

        try:
            principal = self.keys.authenticate(parse_bearer(request.headers.get("authorization")))
        except KeyStoreError:
            log.exception("the key store cannot be read")
            raise Refusal(503, "unavailable", "the key store cannot be read; try again") from None
        if principal is None:
            raise Refusal(
                401,
                "unauthorized",
                "send a valid, unrevoked API key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    # -- the call -------------------------------------------------------------------------------
    async def handle(self, request: Request, endpoint: str) -> Response:
        principal: Principal | None = None
        ids: list[str] = []
        try:
            principal = self.authenticate(request)
            _content_type(request)
            parsed = self._parsers[endpoint](await read_body(request, MAX_BODY_BYTES[endpoint]))
            ids = parsed.ids
            body = await anyio.to_thread.run_sync(
                functools.partial(self._score, endpoint, parsed, principal), limiter=self._limiter
            )
        except Refusal as refusal:
            return await self._refused(refusal, principal, endpoint, ids)
        except Exception:  # a defect: answer 500 without details, and audit it
            log.exception("scoring failed on %s", endpoint)
            failure = Refusal(500, "unavailable", "scoring failed; the error is in the server log")
            return await self._refused(failure, principal, endpoint, ids)
        return Response(body, media_type="application/json", headers=NO_STORE)

    async def _refused(
        self, refusal: Refusal, principal: Principal | None, endpoint: str, ids: list[str]
    ) -> Response:
        """Audit a refused call (unless the audit log is what failed) and answer it."""
        if refusal.status != 503:
            try:
                await anyio.to_thread.run_sync(
                    functools.partial(self._record, principal, endpoint, ids, refusal.status)
                )
            except Refusal as failed:
                return failed.response()
        return refusal.response()

    def _score(self, endpoint: str, parsed: Parsed, principal: Principal) -> bytes:

        try:
            if endpoint == SCORE:
                results = self.scorer.score_ids(parsed.payload, principal)
            else:
                results = self.scorer.score_rows(parsed.payload, principal)
        except Forbidden as exc:
            raise Refusal(403, "forbidden", str(exc)) from None
        body = ScoreResponse(results=results).model_dump_json().encode("utf-8")
        self._record(principal, endpoint, parsed.ids, 200)  # no answer leaves unaudited
        return body

    def _record(self, principal: Principal | None, endpoint: str, ids: list[str], status: int):
        try:
            self.audit.record(
                principal.key_id if principal else None,
                principal.role if principal else None,
                endpoint,
                recordable_ids(ids, self.scorer.known(ids), self.names),
                self.scorer.model_versions,
                self.scorer.features_as_of,
                status,
            )
        except Exception:
            log.exception("the audit log cannot be written")
            raise Refusal(
                503,
                "unavailable",
                "the audit log cannot be written; nothing was answered, try again",
            ) from None

    # -- documentation --------------------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document (built once: it depends only on the loaded models)."""
        if self._openapi is None:
            self._openapi = document(self.rows_model, self.scorer)
        return self._openapi
