"""Nothing leaves the machine: the switches that turn off MLflow's and BentoML's usage telemetry.

`disable_telemetry()` is called once by each entry point (the `keepwell` CLI, the BentoML
service module, the benchmarks, the test session) before MLflow or BentoML is imported; no
module sets them at import. A variable the caller already set is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "BENTOML_DO_NOT_TRACK": "True",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# Not telemetry, but quiet for the same audience: no tqdm bar in a job's output.
QUIET = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def disable_telemetry(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the telemetry switches (and `QUIET`) in `env` (default: this process's environment)
    unless already set; returns `env`, so a child process's environment can be built with it."""
    target = os.environ if env is None else env
    for name, value in {**TELEMETRY_OFF, **QUIET}.items():
        target.setdefault(name, value)
    return target
