"""The BentoML service CRM systems call (`keepwell serve` runs `serving.http.service:Keepwell`).

The HTTP layer only: the routes are `serving.http.routes` (scoring API, docs, RM page), the
scoring `serving.scoring.scorer.Scorer`. The workspace and configuration come from
KEEPWELL_WORKSPACE, KEEPWELL_CONFIG and KEEPWELL_DATA, read when BentoML creates the service
instance in a worker, not at import.
"""

from __future__ import annotations

from keepwell.privacy import disable_telemetry

disable_telemetry()  # this module is the service's entry point (`bentoml serve` imports it)

from keepwell.processes import die_with_parent  # noqa: E402

die_with_parent()  # a worker dies with `keepwell serve` (kill -9 included)

import bentoml  # noqa: E402

from serving.http.api import ScoringAPI  # noqa: E402
from serving.http.paths import RequestRecorder  # noqa: E402
from serving.http.rm_page import RMPage  # noqa: E402
from serving.http.routes import api, bind, ready  # noqa: E402


# BentoML's metrics and access log label requests by their raw path; ours (RequestRecorder) by
# route template (serving/http/paths.py), so BentoML's are off and /metrics is a route of ours.
@bentoml.service(
    name="keepwell",
    http={"host": "127.0.0.1", "port": 3000},
    traffic={"timeout": 30},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(api, path="/")
class Keepwell:
    """Churn and complaint risk, reasons and the next action for bank customers."""

    def __init__(self) -> None:
        # The RM page reads files (it needs no model); the scoring API loads the champions.
        http = ScoringAPI.from_env()
        bind(http=http, rm=RMPage.from_env(http.names))  # the names are refused in notes

    def __is_ready__(self) -> bool:
        """`/readyz`: ready only while the audit log can be written (every call needs it)."""
        return ready()


Keepwell.add_asgi_middleware(RequestRecorder)
