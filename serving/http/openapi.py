"""The service's OpenAPI document (`GET /docs.json`) and its docs page (`GET /` and `/docs`).

Why our own document rather than BentoML's: BentoML's `/docs.json` documents 400/404/500 bodies
of its own shape for every route and cannot describe a request model generated at start-up (the
feature rows come from the loaded models' feature spec). This document is built from the same
pydantic models the endpoints validate with, documents every status they answer with (each 4xx
is an `ErrorBody`), the bearer-key security, and BentoML's open health and metrics endpoints.

The docs page is BentoML's bundled Swagger UI served from the package's own files, without the
Google Tag Manager snippet of BentoML's page, with the spec validator badge (which would send the
document to validator.swagger.io) turned off, and under a Content-Security-Policy that lets the
browser load nothing from another origin.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving.scoring.schemas import ErrorBody, ScoreRequest, ScoreResponse

if TYPE_CHECKING:
    from serving.scoring.scorer import Scorer

REF = "#/components/schemas/{model}"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DOCS_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ERRORS = {
    "401": "No API key, or an unknown or revoked one.",
    "403": "An RM key and a customer outside that RM's book (unknown ids included).",
    "413": "The body is over the size limit.",
    "415": "The body is not `application/json`.",
    "422": "The body does not match the request model; every bad field is named.",
    "503": "The key store or the audit log cannot be used; nothing was scored.",
}


def static_folder() -> Path:
    """BentoML's bundled Swagger UI files (JS, CSS, icons), served by the service itself."""
    import bentoml._internal.server as server

    return Path(server.__file__).parent / "static_content"


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(summary: str, description: str, request: str, op_id: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "One result per requested customer, in request order.",
            "content": _json({"$ref": REF.format(model="ScoreResponse")}),
        }
    }
    for status, text in ERRORS.items():
        responses[status] = {
            "description": text,
            "content": _json({"$ref": REF.format(model="ErrorBody")}),
        }
    return {
        "summary": summary,
        "description": description,
        "operationId": op_id,
        "tags": ["scoring"],
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": _json({"$ref": REF.format(model=request)})},
        "responses": responses,
    }


def _infra(summary: str) -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "get": {
            "summary": summary,
            "tags": ["infrastructure"],
            "security": [],
            "responses": {"200": {"description": "OK", "content": text}},
        }
    }


def document(rows_model: type[BaseModel], scorer: Scorer) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the scoring service as loaded (models and snapshot)."""
    _, top = models_json_schema(
        [
            (ScoreRequest, "validation"),
            (rows_model, "validation"),
            (ScoreResponse, "serialization"),
            (ErrorBody, "serialization"),
        ],
        ref_template=REF,
    )
    schemas = top["$defs"]
    ids = schemas["ScoreRequest"]["properties"]["customer_ids"]
    ids["uniqueItems"] = True  # enforced by the model's validator, invisible to JSON Schema
    try:
        package = version("keepwell")
    except PackageNotFoundError:
        package = "dev"
    versions = ", ".join(f"{t} v{v}" for t, v in sorted(scorer.model_versions.items()))
    description = (
        "Churn and complaint risk, the reasons behind it and what to do next, per customer.\n\n"
        f"Serving models {versions}; features as of {scorer.features_as_of}.\n\n"
        "Send `Authorization: Bearer <key>` (created with `keepwell keys create`). Every 4xx "
        "answer is an `ErrorBody`. An unknown customer id is an item with `found: false`, not a "
        "failed request (for an RM key it is refused with 403, like another RM's customer)."
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Keepwell scoring API", "version": package, "description": description},
        "paths": {
            "/score": {
                "post": _operation(
                    "Score customers by id",
                    "Features are looked up in the online store (snapshot of `features_as_of`).",
                    "ScoreRequest",
                    "score",
                )
            },
            "/score/features": {
                "post": _operation(
                    "Score feature rows sent by the caller",
                    "What-if analysis, or a CRM that computes its own features: one row per "
                    "customer, every feature of the served models, typed and range-checked.",
                    rows_model.__name__,
                    "score_features",
                )
            },
            "/livez": _infra("Liveness (BentoML)"),
            "/healthz": _infra("Liveness (BentoML)"),
            "/readyz": _infra("Readiness (BentoML)"),
            "/metrics": _infra("Prometheus metrics (BentoML)"),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: kw_<key id>_<secret>.",
                }
            },
        },
        "tags": [
            {"name": "scoring", "description": "Needs an API key."},
            {"name": "infrastructure", "description": "Open: health, readiness, metrics."},
        ],
    }


DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Keepwell scoring API</title>
    <link rel="stylesheet" type="text/css" href="/static_content/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/static_content/favicon-light-32x32.png" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/init.js" charset="UTF-8"></script>
  </body>
</html>
"""

DOCS_INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
"""
