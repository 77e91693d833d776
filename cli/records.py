"""`keepwell keys ...` and `keepwell audit`: API keys and the audit log of the scoring service."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import record_commands as cmd
from cli.common import app, console, err_console, fail, open_workspace
from cli.options import ConfigOpt, WorkspaceOpt

keys_app = typer.Typer(
    help="API keys for the scoring service (shown once, stored as hashes).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="crm, admin or rm:<rm_id>.")],
    label: Annotated[
        str | None, typer.Option("--label", help="What the key is for (a system, not a person).")
    ] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a key and print it once (the key alone on stdout, notes on stderr)."""

    ws = open_workspace(config, workspace)
    try:
        cmd.keys_create(ws.path(ws.config.paths.keys), role, label, console, err_console)
    except cmd.CLI_ERRORS as exc:
        raise fail(str(exc)) from None


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by 'keepwell keys list'.")],
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke a key: the service refuses it from its next request on."""

    ws = open_workspace(config, workspace)
    try:
        cmd.keys_revoke(ws.path(ws.config.paths.keys), key_id, console)
    except cmd.CLI_ERRORS as exc:
        raise fail(str(exc)) from None


@keys_app.command("list")
def keys_list(config: ConfigOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Every key with its role, label and dates (never the key or its hash)."""

    ws = open_workspace(config, workspace)
    try:
        cmd.keys_list(ws.path(ws.config.paths.keys), console)
    except cmd.CLI_ERRORS as exc:
        raise fail(str(exc)) from None


audit_app = typer.Typer(
    help="The audit log of the scoring service: who scored a customer (--customer), verify."
)
app.add_typer(audit_app, name="audit")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    customer: Annotated[
        str | None, typer.Option("--customer", help="The customer id to look up.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Newest N calls.")] = 50,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Who scored a customer (--customer ID): time, caller key, role, endpoint, model versions,
    features as_of. `keepwell audit verify` checks the log's hash chain and seal."""

    ctx.obj = {"config": config, "workspace": workspace}
    if ctx.invoked_subcommand is not None:
        if customer is not None:
            raise fail("--customer looks a customer up; give it without a subcommand", 2)
        return
    if customer is None:
        raise fail("give --customer ID (who scored a customer) or a subcommand: verify", 2)
    ws = open_workspace(config, workspace)
    try:
        cmd.audit_show(ws.path(ws.config.paths.audit_log), customer, limit, console)
    except cmd.CLI_ERRORS as exc:
        raise fail(str(exc)) from None


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context, config: ConfigOpt = None, workspace: WorkspaceOpt = None
) -> None:
    """Recompute the audit log's hash chain and check its seal: exit 0 when intact, 1 (with the
    reason) when a call was edited, the tail cut, or the seal forged or deleted."""

    given = ctx.obj or {}
    ws = open_workspace(config or given.get("config"), workspace or given.get("workspace"))
    if not cmd.audit_verify(ws.path(ws.config.paths.audit_log), console, err_console):
        raise typer.Exit(1)
