"""What the service records about a request's URL: its route template, never the raw path.

A raw path may hold anything a caller typed (a customer id, a name, a phone number), so the
service's `/metrics` series and access log name requests by the template of the route that
answered them (`/rm/{rm_id}/tasks/{task_id}`), or `UNMATCHED` when no route did: the series are
bounded by the routes, whatever is sent. BentoML's own metrics and access-log middlewares label by
`scope["path"]` (bentoml/_internal/server/http/instruments.py, access.py), so the service turns
them off in its config (`metrics.enabled`, `logging.access.enabled`) and `RequestRecorder` (added
with `Keepwell.add_asgi_middleware`) records the same series names
(`bentoml_service_request_total`, `bentoml_service_request_duration_seconds`) in a registry of its
worker process, and an access-log line, after routing, when `scope["route"]` names the template.

A path holding a control character (`%0A`) matches no route (Starlette's patterns stop at a
newline); the recorder answers it 404 with an `ErrorBody`, as the catch-all route does. The
recorder also bounds a stalled body: each read of the request body waits at most
`BODY_READ_TIMEOUT` seconds, then the read raises `BodyTimeout` (the handlers answer 408 with an
`ErrorBody`; the recorder does if the handler did not).
"""

from __future__ import annotations

import json
import logging
import os
import re
from timeit import default_timer
from typing import Any

import anyio

UNMATCHED = "unmatched"
BODY_READ_TIMEOUT = 5.0  # seconds one read of a request body may stall before a 408
SYSTEM_PATHS = frozenset(("/livez", "/healthz", "/readyz", "/metrics", "/schema.json"))
CATCH_ALL = "/{path:path}"
NAMESPACE = "bentoml_service"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

access_log = logging.getLogger("bentoml.access")  # where BentoML's own access log went


class BodyTimeout(Exception):
    """The caller stopped sending its request body for `BODY_READ_TIMEOUT` seconds."""


def route_of(scope: dict[str, Any]) -> str:
    """The template of the route that answered `scope` (after routing), else `UNMATCHED`."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str) and template != CATCH_ALL:
        return template
    if template is None and scope.get("path") in SYSTEM_PATHS:  # BentoML's own routes
        return scope["path"]
    return UNMATCHED


class _Series:
    """The request series, in a registry of this worker process (created once per process)."""

    def __init__(self) -> None:
        import prometheus_client

        self.registry = prometheus_client.CollectorRegistry()
        prometheus_client.ProcessCollector(registry=self.registry)
        labels = ["endpoint", "service_name", "service_version", "http_response_code"]
        self.total = prometheus_client.Counter(
            "request_total",
            "Total number of HTTP requests, by route template",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.duration = prometheus_client.Histogram(
            "request_duration_seconds",
            "HTTP request duration in seconds, by route template",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        import prometheus_client

        return prometheus_client.generate_latest(self.registry)


_SERIES: dict[int, _Series] = {}


def series() -> _Series:
    """This process's series (a forked worker makes its own)."""
    pid = os.getpid()
    if pid not in _SERIES:
        _SERIES.clear()
        _SERIES[pid] = _Series()
    return _SERIES[pid]


def _error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    body = json.dumps({"error": code, "detail": detail, "fields": []}).encode("utf-8")
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
    }
    return {"start": start, "body": {"type": "http.response.body", "body": body}}


class RequestRecorder:
    """ASGI middleware: metrics and an access-log line by route template, and the body timeout."""

    def __init__(
        self, app: Any, service_name: str = "keepwell", timeout: float = BODY_READ_TIMEOUT
    ):
        self.app, self.service_name, self.timeout = app, service_name, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = default_timer(), [0]
        if _CONTROL.search(scope.get("path", "")):  # no route can match it (Starlette's `.*`)
            answer = _error_body(404, "not_found", "no such endpoint; see /docs")
            await send(answer["start"])
            await send(answer["body"])
            self._record(scope, 404, default_timer() - start)
            return

        async def timed_receive():
            with anyio.move_on_after(self.timeout) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise BodyTimeout
            return message

        async def recording_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, timed_receive, recording_send)
        except BodyTimeout:
            if not status[0]:
                answer = _error_body(408, "request_timeout", "the request body stopped arriving")
                await recording_send(answer["start"])
                await send(answer["body"])
        finally:
            self._record(scope, status[0] or 500, default_timer() - start)

    def _record(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        endpoint = route_of(scope)
        if endpoint != "/metrics":
            labels = {
                "endpoint": endpoint,
                "service_name": self.service_name,
                "service_version": "",
                "http_response_code": str(status),
            }
            found = series()
            found.total.labels(**labels).inc()
            found.duration.labels(**labels).observe(seconds)
        if endpoint not in SYSTEM_PATHS:
            client = scope.get("client")
            address = f"{client[0]}:{client[1]}" if client else "-"
            access_log.info(
                "%s (scheme=%s,method=%s,path=%s) (status=%s) %.3fms",
                address,
                scope.get("scheme", "http"),
                scope.get("method", ""),
                endpoint,
                status,
                seconds * 1000,
            )
