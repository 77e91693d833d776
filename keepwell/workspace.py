"""The workspace: the one folder Keepwell writes to (data, MLflow store, feature store, keys,
audit log, lists, reports)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from keepwell.config import Config


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config

    @classmethod
    def open(cls, root: Path | str, config: Config) -> Workspace:
        return cls(Path(root).resolve(), config)

    def path(self, relative: str) -> Path:
        """A path inside the workspace; refuses anything that would escape it."""
        p = (self.root / relative).resolve()
        if p != self.root and self.root not in p.parents:
            raise ValueError(f"path {relative!r} leaves the workspace {self.root}")
        return p

    @property
    def demo_data(self) -> Path:
        return self.path(self.config.paths.demo_data)

    @property
    def reports(self) -> Path:
        return self.path(self.config.paths.reports)

    def scratch(self, name: str) -> Path:
        """A scratch folder inside the workspace (engine spill files and the like)."""
        p = self.path(f"tmp/{name}")
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def mlflow_uri(self) -> str:
        """Tracking and registry: `mlflow.tracking_uri` in the config, else, inside a job that
        `mlflow run` launched (MLFLOW_RUN_ID set), the tracking URI it passes, else a SQLite file
        in the workspace. (MLflow itself writes MLFLOW_TRACKING_URI into the environment on
        `set_tracking_uri`, so outside `mlflow run` that variable says nothing about this
        workspace.)"""
        launched = os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_TRACKING_URI")
        uri = self.config.mlflow.tracking_uri or launched
        return uri if uri else f"sqlite:///{self.root / 'mlflow.db'}"
