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
from serving.http.rm_page import RMPage  # noqa: E402
from serving.http.routes import api, bind  # noqa: E402


@bentoml.service(name="keepwell", http={"host": "127.0.0.1", "port": 3000}, traffic={"timeout": 30})
@bentoml.asgi_app(api, path="/")
class Keepwell:
    """Churn and complaint risk, reasons and the next action for bank customers."""

    def __init__(self) -> None:
        # The RM page reads files (it needs no model); the scoring API loads the champions.
        bind(http=ScoringAPI.from_env(), rm=RMPage.from_env())
