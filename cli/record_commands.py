"""The bodies of `keepwell keys ...` and `keepwell audit`, as plain functions.

`cli/app.py` resolves the workspace paths and wraps these in Typer commands; they print with
the consoles they are given and raise one of `CLI_ERRORS` (with a message naming the role, key id
or file) for the CLI to turn into an error line and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from serving.records.audit import AuditError, AuditLog
from serving.records.keys import KeyStore, KeyStoreError, RoleError

CLI_ERRORS: tuple[type[Exception], ...] = (RoleError, KeyStoreError, AuditError, ValueError)


def keys_create(
    keys_path: Path,
    role: str,
    label: str | None,
    console: Console,
    err_console: Console | None = None,
) -> str:
    """Create a key and print it once. Returns the key id.

    The key alone goes to `console` (stdout), everything else to `err_console` (stderr, when
    given), so `KEY=$(keepwell keys create --role crm)` captures just the key.
    """
    notes = err_console or console
    key_id, secret = KeyStore(keys_path).create(role, label=label)
    notes.print(f"Created key [bold]{key_id}[/] with role [bold]{role}[/].", highlight=False)
    console.print(secret, markup=False, highlight=False, soft_wrap=True)
    notes.print(
        "[bold yellow]Copy this key now: it will not be shown again.[/] Keepwell stores only its "
        f"hash (in {keys_path}). Send it as 'Authorization: Bearer <key>'; "
        f"revoke it with 'keepwell keys revoke {key_id}'.",
        highlight=False,
    )
    return key_id


def keys_revoke(keys_path: Path, key_id: str, console: Console) -> None:
    """Revoke a key; the service refuses it from its next request on."""
    store = KeyStore(keys_path)
    before = {k.key_id: k for k in store.list()}.get(key_id)
    info = store.revoke(key_id)
    if before is not None and not before.active:
        console.print(f"Key {key_id} was already revoked at {info.revoked_at}.", highlight=False)
    else:
        console.print(f"Revoked key {key_id} ({info.role}) at {info.revoked_at}.", highlight=False)


def keys_list(keys_path: Path, console: Console) -> None:
    """A table of every key: id, role, label, created, revoked. No secrets, no hashes."""
    keys = KeyStore(keys_path).list()
    if not keys:
        console.print(
            f"No API keys in {keys_path}. Create one with 'keepwell keys create --role crm'."
        )
        return
    table = Table(title=f"API keys ({sum(k.active for k in keys)} active)")
    for column in ("key id", "role", "label", "created (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for k in keys:
        style = "dim" if not k.active else None
        revoked = k.revoked_at or "-"
        table.add_row(k.key_id, k.role, k.label or "", k.created_at, revoked, style=style)
    console.print(table)


def audit_verify(audit_path: Path, console: Console, err_console: Console) -> bool:
    """`keepwell audit verify`: the calls checked and the verdict. True when the log is intact
    (calls after the seal, from a process killed between a call and its seal, are mentioned)."""
    if not audit_path.exists():
        console.print(f"No audit log at {audit_path} yet: nothing to verify.", highlight=False)
        return True
    log = AuditLog(audit_path)
    try:
        try:
            checked = log.verify()
        except AuditError as exc:
            err_console.print(f"[bold red]TAMPERED:[/] {exc}", highlight=False)
            return False
        unsealed = log.unsealed()
    finally:
        log.close()
    note = (
        f"; {unsealed} call(s) after the seal (a process stopped between a call and its seal: "
        "they are chained but not yet sealed)"
        if unsealed
        else ""
    )
    console.print(
        f"OK: {checked:,} call(s) checked in {audit_path}: hash chain and seal intact{note}.",
        highlight=False,
    )
    return True


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{target} {version}" for target, version in sorted(versions.items())) or "-"


def audit_show(audit_path: Path, customer_id: str, limit: int, console: Console) -> int:
    """Who scored `customer_id`: the newest `limit` calls, newest first. Returns how many."""
    if not audit_path.exists():
        console.print(
            f"No audit log at {audit_path} yet: the service writes it on its first scoring call."
        )
        return 0
    log = AuditLog(audit_path)
    try:
        entries = log.who_scored(customer_id, limit=limit)
    finally:
        log.close()
    if not entries:
        console.print(f"Nobody has scored customer {customer_id}.", highlight=False)
        return 0
    table = Table(
        title=f"Who scored {customer_id} (newest first, at most {limit})", box=box.SIMPLE_HEAD
    )
    columns = ("time (UTC)", "key id", "role", "endpoint", "status", "models", "as_of", "ids")
    for column in columns:
        fixed = column in ("time (UTC)", "key id")
        table.add_column(column, no_wrap=fixed, overflow="fold", min_width=len(column))
    table.caption = "models: model version per target; as_of: features as of; ids: ids in the call"
    for e in entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.caller_key_id or "(no valid key)",
            e.role or "-",
            e.endpoint,
            str(e.status),
            _versions(e.model_versions),
            e.features_as_of.isoformat() if e.features_as_of else "-",
            str(len(e.customer_ids)),
        )
    console.print(table)
    return len(entries)
