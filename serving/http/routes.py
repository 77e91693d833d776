"""The service's routes: the scoring API, the docs and the RM page on one FastAPI app, which
`serving.http.service` mounts on the BentoML service (BentoML's documented way to own
authentication and error bodies; BentoML still provides the workers, `/livez`, `/readyz`,
`/metrics` and the server).

Each route hands its request to the objects the service instance creates in its worker
(`bind`): `ScoringAPI` (keys, limits, validation, audit, error bodies) and `RMPage`. No rule
lives here. The catch-all route is last: what no route above (nor BentoML's own) answers gets
an `ErrorBody`, not plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, JSONResponse, Response

from serving.http.api import FEATURES, SCORE, SCORING_PATHS, Refusal, ScoringAPI
from serving.http.openapi import DOCS_HEADERS, DOCS_HTML, DOCS_INIT_JS, static_folder
from serving.http.paths import series
from serving.http.rm_page import RMPage

# GET-only paths (BentoML's and the docs): another method is 405, not 404 from the catch-all.
READ_ONLY = dict.fromkeys(
    (
        "/livez",
        "/healthz",
        "/readyz",
        "/metrics",
        "/schema.json",
        "/docs.json",
        "/docs",
        "/docs/init.js",
        "/",
        "/rm",
        "/rm/static/rm.css",
    ),
    "GET, HEAD",
)
api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)  # the document is ours: /docs.json
api.mount("/static_content", StaticFiles(directory=static_folder()), name="static_content")


@dataclass
class Handlers:
    """What the routes call: set once per worker by the service instance (`bind`)."""

    http: ScoringAPI | None = None
    rm: RMPage | None = None


HANDLERS = Handlers()


def bind(http: ScoringAPI, rm: RMPage) -> None:
    HANDLERS.http, HANDLERS.rm = http, rm


def ready() -> bool:
    """Whether the worker can answer: its handlers are bound and the audit log is writable."""
    return HANDLERS.http is not None and HANDLERS.http.audit.writable()


def scoring() -> ScoringAPI:
    assert HANDLERS.http is not None, "the Keepwell service binds its handlers when created"
    return HANDLERS.http


def rm_page() -> RMPage:
    assert HANDLERS.rm is not None, "the Keepwell service binds its handlers when created"
    return HANDLERS.rm


@api.post(SCORE)
async def score(request: Request) -> Response:
    return await scoring().handle(request, SCORE)


@api.post(FEATURES)
async def score_features(request: Request) -> Response:
    return await scoring().handle(request, FEATURES)


@api.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this worker, labelled by route template (`serving.http.paths`)."""
    content = await anyio.to_thread.run_sync(series().exposition)
    return Response(content, media_type="text/plain; version=0.0.4; charset=utf-8")


@api.get("/docs.json")
async def openapi() -> Response:
    return JSONResponse(scoring().openapi())


@api.get("/")
@api.get("/docs")
async def docs() -> Response:
    return HTMLResponse(DOCS_HTML, headers=DOCS_HEADERS)


@api.get("/docs/init.js")
async def docs_init() -> Response:
    return Response(DOCS_INIT_JS, media_type="text/javascript", headers=DOCS_HEADERS)


# The RM page (serving/http/rm_page.py): each RM's daily list in the browser, and as JSON.
@api.get("/rm")
async def rm_home(request: Request) -> Response:
    return await rm_page().home(request)


@api.post("/rm/signin")
async def rm_signin(request: Request) -> Response:
    return await rm_page().signin(request)


@api.post("/rm/signout")
async def rm_signout(request: Request) -> Response:
    return await rm_page().signout(request)


@api.get("/rm/static/rm.css")
async def rm_css(request: Request) -> Response:
    return await rm_page().stylesheet(request)


@api.get("/rm/{rm_id}/tasks.json")
async def rm_tasks_json(request: Request) -> Response:
    return await rm_page().tasks_json(request)


@api.get("/rm/{rm_id}")
async def rm_list(request: Request) -> Response:
    return await rm_page().page(request)


@api.post("/rm/{rm_id}/tasks/{task_id}")
async def rm_record(request: Request) -> Response:
    return await rm_page().record(request)


# Last: what no route above (nor BentoML's own) answers gets an ErrorBody, not plain text.
@api.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def unknown(request: Request) -> Response:
    allowed = "POST" if request.url.path in SCORING_PATHS else READ_ONLY.get(request.url.path)
    if allowed:
        detail = f"{request.method} is not allowed here; use {allowed.split(',')[0]}"
        return Refusal(405, "invalid_request", detail, headers={"Allow": allowed}).response()
    return Refusal(404, "not_found", "no such endpoint; see /docs").response()
