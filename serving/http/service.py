"""The BentoML service CRM systems call (`keepwell serve` runs `serving.http.service:Keepwell`).

The HTTP layer only. The endpoints are FastAPI routes mounted on the BentoML service (BentoML's
documented way to own authentication and error bodies), so BentoML still provides the workers,
`/livez`, `/readyz`, `/metrics` and the server. Everything else is imported:
`serving.http.api.ScoringAPI` (keys, limits, validation, audit), `serving.scoring.scorer.Scorer`
(the models),
`serving.http.openapi` (the OpenAPI document and docs page).

The workspace and configuration come from KEEPWELL_WORKSPACE, KEEPWELL_CONFIG and KEEPWELL_DATA,
read when BentoML creates the service instance, not at import. The RM page (`serving.http.rm_page`,
issue 7) has its routes under `/rm`, above the catch-all route.
"""

from __future__ import annotations

import os

# Nothing leaves the machine: usage tracking off before BentoML or MLflow is imported.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import bentoml
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, JSONResponse, Response

from serving.http.api import FEATURES, SCORE, SCORING_PATHS, Refusal, ScoringAPI
from serving.http.openapi import DOCS_HEADERS, DOCS_HTML, DOCS_INIT_JS, static_folder
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


@bentoml.service(name="keepwell", http={"host": "127.0.0.1", "port": 3000}, traffic={"timeout": 30})
@bentoml.asgi_app(api, path="/")
class Keepwell:
    """Churn and complaint risk, reasons and the next action for bank customers."""

    def __init__(self) -> None:
        self.rm = RMPage.from_env()  # the RM page reads files: it needs no model
        self.http = ScoringAPI.from_env()

    @api.post(SCORE)
    async def score(self, request: Request) -> Response:
        return await self.http.handle(request, SCORE)

    @api.post(FEATURES)
    async def score_features(self, request: Request) -> Response:
        return await self.http.handle(request, FEATURES)

    @api.get("/docs.json")
    async def openapi(self) -> Response:
        return JSONResponse(self.http.openapi())

    @api.get("/")
    @api.get("/docs")
    async def docs(self) -> Response:
        return HTMLResponse(DOCS_HTML, headers=DOCS_HEADERS)

    @api.get("/docs/init.js")
    async def docs_init(self) -> Response:
        return Response(DOCS_INIT_JS, media_type="text/javascript", headers=DOCS_HEADERS)

    # The RM page (serving/http/rm_page.py): each RM's daily list in the browser, and as JSON.
    @api.get("/rm")
    async def rm_home(self, request: Request) -> Response:
        return await self.rm.home(request)

    @api.post("/rm/signin")
    async def rm_signin(self, request: Request) -> Response:
        return await self.rm.signin(request)

    @api.post("/rm/signout")
    async def rm_signout(self, request: Request) -> Response:
        return await self.rm.signout(request)

    @api.get("/rm/static/rm.css")
    async def rm_css(self, request: Request) -> Response:
        return await self.rm.stylesheet(request)

    @api.get("/rm/{rm_id}/tasks.json")
    async def rm_tasks_json(self, request: Request) -> Response:
        return await self.rm.tasks_json(request)

    @api.get("/rm/{rm_id}")
    async def rm_list(self, request: Request) -> Response:
        return await self.rm.page(request)

    @api.post("/rm/{rm_id}/tasks/{task_id}")
    async def rm_record(self, request: Request) -> Response:
        return await self.rm.record(request)

    # Last: what no route above (nor BentoML's own) answers gets an ErrorBody, not plain text.
    @api.api_route(
        "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    async def unknown(self, request: Request) -> Response:
        allowed = "POST" if request.url.path in SCORING_PATHS else READ_ONLY.get(request.url.path)
        if allowed:
            detail = f"{request.method} is not allowed here; use {allowed.split(',')[0]}"
            return Refusal(405, "invalid_request", detail, headers={"Allow": allowed}).response()
        return Refusal(404, "not_found", "no such endpoint; see /docs").response()
