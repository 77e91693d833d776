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
        """Tracking and registry: `mlflow.tracking_uri` in the config, else the environment's
        MLFLOW_TRACKING_URI (as `mlflow run` sets it), else a SQLite file in the workspace."""
        uri = self.config.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri if uri else f"sqlite:///{self.root / 'mlflow.db'}"
