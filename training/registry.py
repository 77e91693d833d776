"""MLflow tracking and registry for Keepwell: where runs go, model aliases, promotion.

Tracking and registry share one URI: by default a SQLite file in the workspace
(`Workspace.mlflow_uri`), or whatever `mlflow.tracking_uri` in the config names. Artifacts go to
`<workspace>/<mlflow.artifact_root>` for a local store. Usage telemetry is switched
off by the entry points (`keepwell.privacy.disable_telemetry`), not here.

A training run registers each target's model as a new version with the alias `challenger`;
`decide_promotion` compares it with `champion` on the same held-out rows and
`apply_promotion` moves `champion` only when the challenger is not worse by more than the
configured tolerances on ROC-AUC and calibration error.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keepwell.config import Config, PromotionConfig
    from keepwell.workspace import Workspace

CHAMPION = "champion"
CHALLENGER = "challenger"


class RegistryError(RuntimeError):
    """The registry lacks what a command needs; the message says which command creates it."""


def setup_mlflow(workspace: Workspace) -> str:
    """Point MLflow at the workspace's store and make sure the experiment exists; returns its id.

    Quiet: MLflow's alembic migrations log at INFO on a new SQLite file.
    """
    import logging

    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = workspace.mlflow_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched:  # started by `mlflow run`: the run (and its experiment) exist already
        return str(mlflow.get_run(launched).info.experiment_id)
    name = workspace.config.mlflow.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        artifacts = workspace.path(workspace.config.mlflow.artifact_root)
        artifacts.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def model_uri(name: str, alias: str) -> str:
    return f"models:/{name}@{alias}"


def alias_version(name: str, alias: str) -> str | None:
    """The version `alias` points to, or None when the model or the alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def require_alias(name: str, alias: str) -> str:
    version = alias_version(name, alias)
    if version is None:
        raise RegistryError(
            f"registered model {name!r} has no version with alias {alias!r}: "
            "run `keepwell train` first (it registers each model as the challenger), "
            "then `keepwell promote`"
        )
    return version


def set_alias(name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


@dataclass(frozen=True)
class Promotion:
    """The decision for one target, with the numbers behind it and the sentence that says why."""

    target: str
    model: str
    challenger: str
    champion: str | None
    promote: bool
    reason: str
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    target: str,
    model: str,
    challenger: tuple[str, dict[str, float]],
    champion: tuple[str, dict[str, float]] | None,
    rules: PromotionConfig,
) -> Promotion:
    """Promote unless the challenger's ROC-AUC is lower by more than `roc_auc_tolerance` or its
    expected calibration error is higher by more than `calibration_tolerance` (same rows)."""
    version, new = challenger
    if champion is None:
        first = "no champion yet: the challenger becomes the first champion"
        return Promotion(target, model, version, None, True, first, new, None)
    old_version, old = champion
    if old_version == version:
        same = f"version {version} already is the champion"
        return Promotion(target, model, version, old_version, False, same, new, old)
    auc_drop = old["roc_auc"] - new["roc_auc"]
    ece_rise = new["ece"] - old["ece"]
    numbers = (
        f"ROC-AUC {new['roc_auc']:.4f} vs {old['roc_auc']:.4f} (tolerance "
        f"{rules.roc_auc_tolerance}), calibration error {new['ece']:.4f} vs {old['ece']:.4f} "
        f"(tolerance {rules.calibration_tolerance})"
    )
    problems = []
    if auc_drop > rules.roc_auc_tolerance:
        problems.append(f"ROC-AUC lower by {auc_drop:.4f}")
    if ece_rise > rules.calibration_tolerance:
        problems.append(f"calibration error higher by {ece_rise:.4f}")
    if problems:
        reason = f"kept champion v{old_version}: challenger {' and '.join(problems)}; {numbers}"
        return Promotion(target, model, version, old_version, False, reason, new, old)
    reason = f"challenger v{version} replaces champion v{old_version}: {numbers}"
    return Promotion(target, model, version, old_version, True, reason, new, old)


def apply_promotion(decision: Promotion) -> None:
    """Move `champion` to the challenger's version and tag the version with the reason."""
    from mlflow import MlflowClient

    if not decision.promote:
        return
    set_alias(decision.model, CHAMPION, decision.challenger)
    MlflowClient().set_model_version_tag(
        decision.model, decision.challenger, "promotion", decision.reason[:5000]
    )


def registered_name(config: Config, target: str) -> str:
    return config.training.registered_models[target]


def stored_location(name: str, version: str) -> str:
    """Where the registry says a model version's files are (an absolute URI, as logged)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    found = getattr(client.get_model_version(name, str(version)), "storage_location", None)
    return found or client.get_model_version_download_uri(name, str(version))


def workspace_location(workspace: Workspace, stored: str) -> Path | str:
    """A stored artifact location resolved in `workspace`, so a copied workspace uses its own files.

    `mlflow.db` holds absolute `file://` URIs. One that lies under the artifact root of some
    workspace (`<root>/<mlflow.artifact_root>/...`) is mapped to the same place under this
    workspace's artifact root; anything else (a remote store, an artifact root outside any
    workspace) is returned as stored. A mapped folder that does not exist raises
    `RegistryError`: the registry was copied without its artifacts."""
    from urllib.parse import unquote, urlparse
    from urllib.request import url2pathname

    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    def as_path(uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            return None
        return Path(url2pathname(unquote(parsed.path)))

    path = as_path(stored)
    setting = workspace.config.mlflow.artifact_root
    if path is None or Path(setting).is_absolute():
        return path if path is not None else stored
    here, tail = workspace.path(setting).resolve(), Path(setting).parts
    roots = []  # the artifact roots of the experiments: `<some workspace>/<artifact_root>`
    for experiment in MlflowClient().search_experiments(view_type=ViewType.ALL):
        root = as_path(experiment.artifact_location or "")
        if root is not None and root.parts[-len(tail) :] == tail and path.is_relative_to(root):
            roots.append(root)
    if not roots:
        return path
    local = here / path.relative_to(max(roots, key=lambda r: len(r.parts)))
    if not local.exists():
        raise RegistryError(
            f"the model files {local} are not in this workspace ({workspace.root}); the registry "
            f"logged them at {path}. Copy a workspace whole (mlflow.db with {setting}/)"
        )
    return local
