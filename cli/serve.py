"""`keepwell serve`: check the setup, then run the BentoML scoring service
(`serving.http.service`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import app, console, err_console, fail, open_workspace, state
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt
from keepwell.privacy import TELEMETRY_OFF
from keepwell.processes import SERVE_PID_ENV

SERVICE = "serving.http.service:Keepwell"
SERVICE_NAME = "keepwell"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def service_env(
    workspace: Path, config: Path | None, data: Path | None, workers: int
) -> dict[str, str]:
    """The environment of `bentoml serve`: where the service finds its workspace, configuration
    and data (read when a worker creates the service), workers, and telemetry off."""
    env = dict(os.environ)
    env.update(
        KEEPWELL_WORKSPACE=str(workspace.resolve()),
        # the arbiter keeps this pid (execve): its workers die with it (keepwell.processes)
        **{SERVE_PID_ENV: str(os.getpid())},
        **TELEMETRY_OFF,
        BENTOML_CONFIG_OVERRIDES=json.dumps({"services": {SERVICE_NAME: {"workers": workers}}}),
    )
    for name, value in (("KEEPWELL_CONFIG", config), ("KEEPWELL_DATA", data)):
        if value is not None:
            env[name] = str(value.resolve())
        else:
            env.pop(name, None)
    return env


def serve_command(host: str, port: int) -> list[str]:
    """`bentoml serve` for the service, run from the folder that holds the `serving` package."""
    import serving

    root = Path(serving.__file__).resolve().parents[1]
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(root),
    ]


@app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but 127.0.0.1 is reachable from outside.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (one CPU core each).")
    ] = 1,
    data: DataOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the scoring API (POST /score, /score/features; docs at /docs) with BentoML.

    Checks first that the champion models, the online store and the data folder are there, and
    says which command makes what is missing.
    """
    from serving.records.keys import KeyStore, KeyStoreError
    from serving.scoring.loading import check_setup
    from serving.scoring.model import ServingSetupError

    ws = open_workspace(config, workspace)
    try:
        found = check_setup(ws, ws.config, data_dir=data)
    except ServingSetupError as exc:
        raise fail(str(exc), 1) from None
    models = ", ".join(found["models"].values())
    console.print(
        f"Serving {models} on features as of {found['as_of']} ({found['customers']:,} customers, "
        f"{found['store']}).",
        highlight=False,
    )
    if found["data"] is None:
        err_console.print(
            "[yellow]warning:[/] no data folder (pass --data): no callback is reported due and "
            "RM-scoped keys are refused",
            highlight=False,
        )
    try:
        active = [k for k in KeyStore(ws.path(ws.config.paths.keys)).list() if k.active]
    except KeyStoreError as exc:
        raise fail(str(exc), 1) from None
    if not active:
        err_console.print(
            "[yellow]warning:[/] no API key yet: every call will get 401 until you run "
            "'keepwell keys create --role crm'",
            highlight=False,
        )
    if host not in LOOPBACK:
        err_console.print(
            f"[yellow]warning:[/] binding to {host}: the service is reachable from other machines",
            highlight=False,
        )
    config_file = config or state["config"]
    env = service_env(ws.root, config_file, data, workers)
    console.print(f"Docs: http://{host}:{port}/docs  (Ctrl-C stops the service)", highlight=False)
    sys.stdout.flush()
    command = serve_command(host, port)
    os.execve(command[0], command, env)  # BentoML takes over this process (and Ctrl-C)
