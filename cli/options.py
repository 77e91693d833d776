"""The options every `keepwell` command shares (Typer annotations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file merged over conf/keepwell.yaml.", dir_okay=False),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", help="Folder for everything Keepwell writes (default: ./workspace)."
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Folder of bank tables (default: the demo bank in the workspace)."),
]
EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="duckdb or spark (config: features.engine).")
]
MappingOpt = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help="YAML column mapping for your own files (see conf/mappings/).",
        dir_okay=False,
    ),
]
