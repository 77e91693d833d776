"""Serving fixtures: one workspace per session with everything `keepwell serve` needs.

The session's `small_bank` (3,000 customers) is the data folder; its latest snapshot is
materialized into the workspace's online store; the small 50-tree churn and complaint models of
`tests.training._models` are logged, registered in a SQLite registry inside the workspace and
aliased `champion`; API keys exist for crm, admin and two RMs (and one revoked crm key).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from keepwell.config import Config, load_config
from keepwell.workspace import Workspace
from tests.training._models import feature_frame, small_model

ENV_KEYS = ("KEEPWELL_WORKSPACE", "KEEPWELL_CONFIG", "KEEPWELL_DATA")
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass(frozen=True)
class Keys:
    crm: str
    admin: str
    rm_a: str
    rm_b: str
    revoked: str
    rm_a_id: str
    rm_b_id: str
    key_ids: dict[str, str]


@dataclass(frozen=True)
class ServingSetup:
    workspace: Workspace
    config: Config  # the session config with the workspace's registry pinned
    config_file: Path  # the same as a YAML file merged over the defaults (for the service)
    bank: Path
    keys: Keys
    customers: pd.DataFrame  # customer_id, rm_id of the bank (no PII columns)


def register_champions(ws: Workspace, bank: Path, config) -> dict[str, str]:
    """Log both small models, register them under the configured names, alias `champion`."""
    import mlflow

    from training.pyfunc import log_model
    from training.registry import CHAMPION, registered_name, set_alias, setup_mlflow

    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    setup_mlflow(ws)
    frame, spec = feature_frame(bank, config)
    versions = {}
    try:
        for target in ("churn", "complaint"):
            name = registered_name(config, target)
            with mlflow.start_run(run_name=f"serving-test {target}"):
                info = log_model(
                    small_model(bank, config, target),
                    spec,
                    config,
                    name=f"{target}_model",
                    registered_model_name=name,
                    input_example=frame,
                )
            versions[target] = str(info.registered_model_version)
            set_alias(name, CHAMPION, versions[target])
    finally:  # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in the environment
        _restore(saved)
    return versions


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def serving_setup(tmp_path_factory, small_bank, config) -> ServingSetup:
    from features.pipeline import materialize_latest
    from serving.records.keys import KeyStore

    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("serving") / "workspace"
    # The registry is pinned in the config: Workspace.mlflow_uri would otherwise prefer an
    # MLFLOW_TRACKING_URI that another test module left in the environment.
    config_file = root.parent / "keepwell.yaml"
    config_file.write_text(f"mlflow:\n  tracking_uri: sqlite:///{root}/mlflow.db\n", "utf-8")
    config = load_config(config_file)
    ws = Workspace.open(root, config)
    materialize_latest(small_bank, ws.path(config.paths.feature_store), config)
    register_champions(ws, small_bank, config)
    customers = pd.read_parquet(small_bank / "customers.parquet", columns=["customer_id", "rm_id"])
    rms = customers["rm_id"].value_counts().index.tolist()
    store = KeyStore(ws.path(config.paths.keys))
    ids, secrets = {}, {}
    for name, role in (
        ("crm", "crm"),
        ("admin", "admin"),
        ("rm_a", f"rm:{rms[0]}"),
        ("rm_b", f"rm:{rms[1]}"),
        ("revoked", "crm"),
    ):
        ids[name], secrets[name] = store.create(role, label=f"test {name}")
    store.revoke(ids["revoked"])
    keys = Keys(**secrets, rm_a_id=rms[0], rm_b_id=rms[1], key_ids=ids)
    return ServingSetup(ws, config, config_file, small_bank, keys, customers)


@pytest.fixture(scope="session")
def scorer(serving_setup):
    from serving.scoring.scorer import Scorer

    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    try:
        return Scorer.load(serving_setup.workspace, serving_setup.config)
    finally:  # loading points MLflow (and so the environment) at the test registry
        _restore(saved)


@pytest.fixture(scope="session")
def service_env(serving_setup) -> Iterator[dict[str, str]]:
    """The environment `keepwell serve` gives the service, set for the session."""
    env = {
        "KEEPWELL_WORKSPACE": str(serving_setup.workspace.root),
        "KEEPWELL_CONFIG": str(serving_setup.config_file),
    }
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(env)
    yield env
    _restore(saved)


@pytest.fixture(scope="session")
def client(service_env):
    """The service's ASGI app (BentoML's, with the mounted Keepwell API) in process."""
    with warnings.catch_warnings():  # "install httpx2": the TestClient works with httpx 0.28
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from serving.http.service import Keepwell

    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    with TestClient(Keepwell.to_asgi(), raise_server_exceptions=False) as c:
        _restore(saved)
        yield c


@pytest.fixture(autouse=True)
def _keep_mlflow_env() -> Iterator[None]:
    """Put MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI back after each test: `mlflow.set_tracking_uri`
    (called by every registry load) writes them, and `Workspace.mlflow_uri` reads them."""
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    yield
    _restore(saved)


# -- the real server ----------------------------------------------------------------------------
SERVER_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class LiveServer:
    base: str
    port: int
    log: Path
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"keepwell serve exited with {server.process.returncode}:\n"
                f"{server.log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"not ready in {SERVER_START_TIMEOUT:.0f} s:\n{server.log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(serving_setup, tmp_path_factory) -> Iterator[LiveServer]:
    """`keepwell serve` on a free port of 127.0.0.1 (one worker), stopped after the session; the
    teardown checks that it stopped and freed the port. KEEPWELL_SKIP_SERVER_TEST=1 skips the
    tests that need it (where BentoML cannot start)."""
    if os.environ.get("KEEPWELL_SKIP_SERVER_TEST") == "1":
        pytest.skip("KEEPWELL_SKIP_SERVER_TEST=1")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    command = [
        sys.executable,
        "-m",
        "cli",
        "--workspace",
        str(serving_setup.workspace.root),
        "--config",
        str(serving_setup.config_file),
        "serve",
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEPWELL_"))}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = LiveServer(f"http://127.0.0.1:{port}", port, log, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group this fixture started, by its id
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            pytest.fail("keepwell serve did not stop within 30 s of SIGTERM")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base}/livez", timeout=2)


@dataclass(frozen=True)
class Planned:
    """`keepwell plan` run once on the serving workspace for its snapshot date."""

    day: dt.date
    folder: Path
    summary: dict


@pytest.fixture(scope="session")
def planned(serving_setup) -> Planned:
    from features.store import OnlineStore
    from serving.planning.job import plan_day

    ws, config = serving_setup.workspace, serving_setup.config
    with OnlineStore(ws.path(config.paths.feature_store), preload=False) as store:
        day = store.as_of
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    try:
        result = plan_day(ws, config, day)
    finally:  # loading the champions points MLflow (and the environment) at the test registry
        _restore(saved)
    return Planned(day, result.folder, result.summary)
