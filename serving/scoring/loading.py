"""What `Scorer.load` reads: the champions from the registry, the online snapshot, the data folder.

Each missing piece stops start-up with a `ServingSetupError` that names it and the command that
makes it (`keepwell train`, `keepwell promote`, `keepwell features materialize`). The data
folder (for due callbacks and the customer -> RM map) is optional: without it the service still
scores, reports no callback as due, and refuses RM-scoped keys; each such gap is a note the
service logs and `keepwell serve` prints.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.definitions import default_spec
from features.store import OnlineStore, StoreError
from keepwell.contract.reading import read_folder
from keepwell.words import TARGETS
from serving.decisions.rules import due_tasks_from_folder
from serving.scoring.model import DECISION_FEATURES, ServedModel, ServingSetupError
from serving.scoring.snapshot import Snapshot
from training.registry import (
    CHAMPION,
    RegistryError,
    alias_version,
    registered_name,
    stored_location,
    workspace_location,
)

if TYPE_CHECKING:
    from features.store import OnlineStore
    from keepwell.config import Config
    from keepwell.workspace import Workspace

TRAIN = "`keepwell train`"
PROMOTE = "`keepwell promote`"
MATERIALIZE = "`keepwell features materialize`"


def registry_uri(workspace: Workspace) -> str:
    """Point MLflow at the workspace's registry (without creating it); its URI."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = workspace.mlflow_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ServingSetupError(
            f"no model registry at {uri.removeprefix('sqlite:///')}: train the models with "
            f"{TRAIN}, then make them the champions with {PROMOTE}"
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def load_champion(
    target: str, config: Config, uri: str, workspace: Workspace | None = None
) -> ServedModel:
    """The `champion` version of `target`'s registered model, loaded through its pyfunc.

    With `workspace`, the model's files are the ones in that workspace's artifact root
    (`training.registry.workspace_location`: a copied workspace serves its own copy). A damaged
    model (a missing, truncated or garbled file) is one `ServingSetupError` line naming the
    model, the version and the file; LightGBM's own output is captured, not printed."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = registered_name(config, target)
    try:
        MlflowClient().get_registered_model(name)
    except MlflowException:
        raise ServingSetupError(
            f"the registry {uri} has no model {name!r} ({target}): run {TRAIN}, then {PROMOTE}"
        ) from None
    version = alias_version(name, CHAMPION)
    if version is None:
        raise ServingSetupError(
            f"model {name!r} has no {CHAMPION!r} version yet: run {PROMOTE} (it promotes the "
            f"challenger that {TRAIN} registered)"
        )
    # the version the alias named, so a promotion during start-up cannot mix versions
    source: Path | str = f"models:/{name}/{version}"
    if workspace is not None:
        try:
            source = workspace_location(workspace, stored_location(name, version))
        except (MlflowException, RegistryError) as exc:
            raise ServingSetupError(f"cannot load {name} version {version}: {exc}") from None
    wrapper = _load_pyfunc(name, version, source)
    if getattr(wrapper, "fitted", None) is None or getattr(wrapper, "texts", None) is None:
        raise ServingSetupError(f"{name} version {version} is not a Keepwell model")
    return ServedModel(target, name, version, wrapper.fitted, wrapper.texts)


@contextlib.contextmanager
def _captured_output() -> Iterator[None]:
    """Send this process's stdout and stderr (Python's and the C libraries') to a scratch file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _load_pyfunc(name: str, version: str, source: Path | str) -> Any:
    import mlflow.pyfunc

    try:
        with _captured_output():
            return mlflow.pyfunc.load_model(str(source)).unwrap_python_model()
    except Exception as exc:  # LightGBM, JSON, YAML, pickle, OS errors: all mean a damaged model
        where = damaged_file(source, exc) if isinstance(source, Path) else None
        file = f", file {where}" if where else ""
        raise ServingSetupError(
            f"cannot load model {name} version {version}{file}: {first_line(exc)} (restore the "
            f"model's files, or train and promote a new version with {TRAIN})"
        ) from None


def damaged_file(folder: Path, exc: BaseException) -> Path | None:
    """The file of a logged Keepwell model that is missing or does not parse, else None."""
    import yaml

    named = getattr(exc, "filename", None)
    if named:
        return Path(named)
    checks = [
        ("MLmodel", yaml.safe_load),
        ("artifacts/spec.json", json.loads),
        ("artifacts/fitted/model.json", json.loads),
        ("artifacts/fitted/booster.txt", None),
    ]
    for relative, parse in checks:
        path = folder / relative
        if not path.is_file():
            return path
        try:
            if parse is not None:
                parse(path.read_text(encoding="utf-8"))
            else:
                import lightgbm as lgb

                with _captured_output():
                    lgb.Booster(model_file=str(path))
        except Exception:
            return path
    return None


def open_store(workspace: Workspace, config: Config) -> OnlineStore:

    path = workspace.path(config.paths.feature_store)
    try:
        return OnlineStore(path, preload=False)
    except StoreError as exc:
        raise ServingSetupError(f"{exc}; the service reads it: run {MATERIALIZE}") from None


def check_store(store: OnlineStore, models: dict[str, ServedModel]) -> None:
    """The store must hold every feature the models read, built from the same feature spec."""
    for m in models.values():
        missing = [f for f in m.fitted.features if f not in store.feature_columns]
        if missing:
            raise ServingSetupError(
                f"the online store {store.path} lacks feature(s) {missing} that the {m.target} "
                f"model ({m.name} v{m.version}) reads: re-run {MATERIALIZE} with the data and "
                f"configuration the model was trained on, or retrain with {TRAIN}"
            )
        if m.fitted.spec_version and store.spec_version != m.fitted.spec_version:
            raise ServingSetupError(
                f"the online store {store.path} was built with feature spec {store.spec_version}, "
                f"the {m.target} model ({m.name} v{m.version}) with {m.fitted.spec_version}: "
                f"the same names may mean different things; re-run {MATERIALIZE} with the "
                f"configuration the model was trained on, or retrain with {TRAIN}"
            )


def column_dtypes(store: OnlineStore, models: dict[str, ServedModel], config: Config) -> dict:
    """The served columns (model features, decision and value-score inputs that the store has),
    in store order, with their spec dtype (int64, float64, boolean, string)."""
    return dtypes_of(store.feature_columns, models, config)


def dtypes_of(columns: Iterable[str], models: dict[str, ServedModel], config: Config) -> dict:
    """`column_dtypes` for any list of feature columns (a snapshot built in memory)."""

    spec = default_spec(config)
    wanted = {f for m in models.values() for f in m.fitted.features}
    wanted |= set(DECISION_FEATURES) | set(config.tiers.value_weights)
    out: dict[str, str] = {}
    for name in columns:
        if name not in wanted:
            continue
        if name in spec:
            out[name] = spec[name].dtype
        else:
            texts = next((m.texts for m in models.values() if name in m.texts), None)
            if texts is None:
                continue
            out[name] = texts[name].dtype
    return out


def data_folder(
    workspace: Workspace, store: OnlineStore, data_dir: Path | str | None
) -> Path | None:
    """`data_dir`, else the folder the store was materialized from, else the demo bank."""
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise ServingSetupError(f"the data folder {folder} does not exist")
        return folder
    for candidate in (store.metadata.get("data"), workspace.demo_data):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def rm_map(folder: Path) -> pd.Series:
    """customer_id -> rm_id from the folder's customers table (only those two columns)."""

    found = read_folder(folder)
    source = found.sources.get("customers")
    if source is None or "rm_id" not in source.raw.columns:
        raise ValueError(f"{folder} has no customers table with an rm_id column")
    table = source.raw.select("customer_id", "rm_id").to_pyarrow().to_pandas()
    table = table.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
    return pd.Series(
        table["rm_id"].to_numpy(dtype=object), index=table["customer_id"].astype(str), dtype=object
    )


def first_line(exc: BaseException) -> str:
    """The error's first line: a contract report quotes offending rows below it."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def load_parts(
    workspace: Workspace, config: Config, *, data_dir: Path | str | None = None
) -> dict[str, Any]:
    """The keyword arguments of `Scorer.build`, read from the workspace (see the module doc)."""

    uri = registry_uri(workspace)
    models = {t: load_champion(t, config, uri, workspace) for t in TARGETS}
    store = open_store(workspace, config)
    try:
        check_store(store, models)
        snapshot = Snapshot.from_store(store, column_dtypes(store, models, config))
        as_of, notes = store.as_of, []
        folder = data_folder(workspace, store, data_dir)
    finally:
        store.close()
    rm_of = due = None
    if folder is None:
        notes.append(
            "no data folder (pass --data): no callback is reported due, and RM-scoped keys are "
            "refused because the customer -> RM map is unknown"
        )
    else:
        try:
            rm_of = rm_map(folder)
        except Exception as exc:  # the service still scores for crm and admin keys
            notes.append(
                f"no customer -> RM map from {folder} ({first_line(exc)}): RM keys are refused"
            )
        try:
            due = due_tasks_from_folder(folder, as_of, config)
        except Exception as exc:
            notes.append(
                f"no due callbacks from {folder} ({first_line(exc)}): callback_due stays empty"
            )
    source = {"store": str(store.path), "data": str(folder) if folder else None, "registry": uri}
    return {
        "models": models,
        "snapshot": snapshot,
        "as_of": as_of,
        "config": config,
        "rm_of": rm_of,
        "due_tasks": due,
        "notes": notes,
        "source": source,
    }


def check_setup(
    workspace: Workspace, config: Config, *, data_dir: Path | str | None = None
) -> dict[str, Any]:
    """What `keepwell serve` checks before it starts BentoML: the champions load, the store opens
    and fits them, the data folder (if any) exists. Returns what it found, for the start-up
    message; raises `ServingSetupError` like `Scorer.load`."""
    uri = registry_uri(workspace)
    models = {t: load_champion(t, config, uri, workspace) for t in TARGETS}
    store = open_store(workspace, config)
    try:
        check_store(store, models)
        folder = data_folder(workspace, store, data_dir)
        found = {"as_of": store.as_of, "customers": store.row_count, "store": store.path}
    finally:
        store.close()
    versions = {t: f"{m.name} v{m.version}" for t, m in models.items()}
    return {**found, "models": versions, "data": folder, "registry": uri}
