"""The planner's edges: the scorer for a day's snapshot, and the list files (see
`serving.planning.job` for the steps and `serving.planning.planner` for the rules)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.pipeline import build_snapshot_table
from features.store import StoreError
from keepwell import swap
from keepwell.contract.report import mask_value
from keepwell.words import TARGETS
from serving.planning.list_format import LIST_COLUMNS, REASON_SEPARATOR, rm_lists, type_errors
from serving.records.audit import AuditLog
from serving.records.keys import Principal
from serving.records.outcomes import task_id
from serving.scoring.loading import (
    check_store,
    column_dtypes,
    data_folder,
    dtypes_of,
    load_champion,
    open_store,
    registry_uri,
)
from serving.scoring.model import ServingSetupError
from serving.scoring.scorer import Scorer
from serving.scoring.snapshot import Snapshot

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from serving.planning.planner import Plan

SCORE_BATCH = 5_000
PLANNER = Principal(key_id="planner", role="admin")
PLAN_ENDPOINT = "keepwell plan"
LIST_FOLDER = r"\d{4}-\d{2}-\d{2}"  # the day folders `keepwell plan` writes (and recovers)
Say = Callable[[str], None]


def load_scorer(
    workspace: Workspace, config: Config, day: dt.date, data_dir: Path | str | None, say: Say
) -> tuple[Scorer, Path]:
    """A scorer over the feature snapshot of `day` with the champion models, and the data folder.

    The online store is used when it holds the snapshot of `day` (what the service serves);
    otherwise the snapshot is built from the data folder for `day`."""

    uri = registry_uri(workspace)
    models = {t: load_champion(t, config, uri, workspace) for t in TARGETS}
    say("loaded " + ", ".join(f"{m.name} v{m.version}" for m in models.values()))
    store = None
    try:
        store = open_store(workspace, config)
    except (ServingSetupError, StoreError):
        store = None
    try:
        if store is not None and store.as_of == day:
            check_store(store, models)
            folder = data_folder(workspace, store, data_dir)
            snapshot = Snapshot.from_store(store, column_dtypes(store, models, config))
            n = len(snapshot)
            say(f"features of {day} from the online store {store.path} ({n:,} customers)")
        else:
            folder = _folder(workspace, store, data_dir)
            say(f"building the feature snapshot of {day} from {folder}")
            build = build_snapshot_table(folder, [day], config)
            frame = build.to_pyarrow().to_pandas()
            needed = {f for m in models.values() for f in m.fitted.features}
            missing = sorted(needed - set(frame.columns))
            if missing:
                raise ServingSetupError(
                    f"the snapshot of {day} built from {folder} lacks model feature(s) {missing}"
                )
            snapshot = Snapshot.from_frame(frame, dtypes_of(frame.columns, models, config))
            say(f"built the features of {len(snapshot):,} customers")
    finally:
        if store is not None:
            store.close()
    if folder is None:
        raise ServingSetupError("no data folder: pass --data DIR with the bank's tables")
    return Scorer.build(models, snapshot, day, config), folder


def _folder(workspace: Workspace, store: Any, data_dir: Path | str | None) -> Path | None:

    if store is not None:
        return data_folder(workspace, store, data_dir)
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise ServingSetupError(f"the data folder {data_dir} does not exist")
        return Path(data_dir)
    return workspace.demo_data if workspace.demo_data.is_dir() else None


def explained(scorer: Scorer, ids: list[str], say: Say) -> pd.DataFrame:
    """The scoring API's answer for the listed customers: exact probabilities and reasons."""
    rows = []
    for lo in range(0, len(ids), SCORE_BATCH):
        for item in scorer.score_ids(ids[lo : lo + SCORE_BATCH], PLANNER):
            rows.append(
                (
                    item.customer_id,
                    item.churn_probability,
                    item.complaint_probability,
                    REASON_SEPARATOR.join(r.sentence for r in item.reasons),
                )
            )
    say(f"explained {len(ids):,} listed customers")
    return pd.DataFrame(
        rows, columns=["customer_id", "churn_probability", "complaint_probability", "reasons"]
    )


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def summarize(plan: Plan, scored: pd.DataFrame, versions: dict[str, str]) -> dict[str, Any]:
    """summary.json: tasks by rule, tier and channel, and every RM's load."""
    tasks = plan.tasks
    risk = tasks["rule"].eq("risk")
    per_rm = tasks.assign(
        mandatory=~risk, risk=risk, care=tasks["special_care"].astype(bool)
    ).groupby("rm_id")
    rms = sorted(set(scored["rm_id"].dropna().astype(str)))
    branch = scored.drop_duplicates("rm_id").set_index("rm_id")["branch_id"]
    load = []
    for rm in rms:
        cap = int(plan.capacity.get(rm, 0))
        n = int(per_rm.size().get(rm, 0))
        mandatory = int(per_rm["mandatory"].sum().get(rm, 0))
        load.append(
            {
                "rm_id": rm,
                "branch_id": None if pd.isna(branch.get(rm)) else str(branch.get(rm)),
                "capacity": cap,
                "tasks": n,
                "mandatory": mandatory,
                "risk": int(per_rm["risk"].sum().get(rm, 0)),
                "special_care": int(per_rm["care"].sum().get(rm, 0)),
                "load": round(n / cap, 4) if cap else None,
            }
        )
    return {
        "date": plan.day.isoformat(),
        "features_as_of": plan.day.isoformat(),
        "rank_by": plan.rank_by,
        "model_versions": versions,
        "customers": len(scored),
        "rms": len(rms),
        "tasks": len(tasks),
        "by_rule": _counts(tasks["rule"]),
        "by_value_tier": _counts(tasks["value_tier"]),
        "by_risk_tier": _counts(tasks["risk_tier"]),
        "by_channel": _counts(tasks["channel"]),
        "special_care": int(tasks["special_care"].sum()),
        "held_out": len(plan.held_out),
        "dropped_by_capacity": plan.dropped,
        "deferred": len(plan.deferred),
        "carried_over": int(tasks["carried_from"].notna().sum()),
        "overloaded_rms": sum(1 for r in load if r["capacity"] < r["mandatory"]),
        "rm_load": load,
    }


def list_frame(
    plan: Plan, scorer: Scorer, facts: pd.DataFrame, versions: dict[str, str], say: Say
) -> pd.DataFrame:
    """The per-RM list rows (`LIST_COLUMNS`), in (rm_id, rank) order."""
    tasks = plan.tasks.copy()
    ids = tasks["customer_id"].astype(str).tolist()
    api = explained(scorer, ids, say).set_index("customer_id").reindex(ids)
    for col in ("churn_probability", "complaint_probability", "reasons"):
        tasks[col] = api[col].to_numpy()
    phone = (
        facts["phone"].reindex(ids) if "phone" in facts.columns else pd.Series([None] * len(ids))
    )
    tasks["phone_masked"] = [mask_value("phone", p) if pd.notna(p) else None for p in phone]
    tasks["list_date"] = plan.day
    tasks["model_versions"] = ",".join(f"{t}:{v}" for t, v in sorted(versions.items()))
    tasks["carried_from"] = pd.to_datetime(tasks["carried_from"]).dt.date
    tasks["carried_from"] = (
        tasks["carried_from"].astype(object).where(tasks["carried_from"].notna(), None)
    )
    return tasks[list(LIST_COLUMNS)].sort_values(["rm_id", "rank"], kind="stable")


def deferred_frame(plan: Plan) -> pd.DataFrame:
    """The deferred special-care risk tasks, in the columns the next day's carry-over reads."""
    d = plan.deferred.sort_values(["rm_id", "deadline", "customer_id"], kind="stable")
    return pd.DataFrame(
        {
            "task_id": [task_id(plan.day, c) for c in d["customer_id"]],
            "list_date": [plan.day] * len(d),
            "customer_id": d["customer_id"].astype(str).to_numpy(dtype=object),
            "rm_id": d["rm_id"].to_numpy(dtype=object),
            "rule": ["risk"] * len(d),
            "rules": ["risk"] * len(d),
            "deadline": pd.to_datetime(d["deadline"], utc=True),
            "carried_from": pd.to_datetime(d["carried_from"]).dt.date.astype(object),
        }
    ).reset_index(drop=True)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out["deadline"] = out["deadline"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for col in ("churn_probability", "complaint_probability", "rank_score"):
        out[col] = out[col].round(6)
    out.to_csv(path, index=False, lineterminator="\n")


def write_plan(
    workspace: Workspace,
    config: Config,
    plan: Plan,
    scorer: Scorer,
    scored: pd.DataFrame,
    facts: pd.DataFrame,
    say: Say,
) -> tuple[Path, dict[str, Any]]:
    """Write `<lists>/<day>/` as a whole (see `serving.planning.job`) and the audit entry."""

    versions = dict(scorer.model_versions)
    rows = list_frame(plan, scorer, facts, versions, say)
    problems = type_errors(_arrow(rows).schema)
    if problems:  # the planner's own frame: a bug, not bad input
        raise TypeError(f"the list rows break serving.planning.list_format: {problems}")
    summary = summarize(plan, scored, versions)
    mix = (
        scored.groupby(["rm_id", "value_tier", "risk_tier"], sort=True)
        .size()
        .rename("customers")
        .reset_index()
    )
    lists_root = workspace.path(config.paths.lists)
    target = lists_root / plan.day.isoformat()
    audit = AuditLog(workspace.path(config.paths.audit_log))
    try:
        with swap.lock(lists_root):  # one writer at a time: recovery removes others' leftovers
            recover_lists(lists_root, audit, say)
            with swap.staging(target) as tmp:
                for rm, part in rows.groupby("rm_id", sort=True):
                    part = part.reset_index(drop=True)
                    pq.write_table(_arrow(part), tmp / f"{rm}.parquet", compression="snappy")
                    _csv(part, tmp / f"{rm}.csv")
                pq.write_table(_arrow(mix), tmp / "book_mix.parquet")
                held = plan.held_out.sort_values("customer_id")
                held = held.rename(columns={"score": "rank_score"}).reset_index(drop=True)
                pq.write_table(_arrow(held), tmp / "holdout.parquet")
                pq.write_table(_arrow(deferred_frame(plan)), tmp / "deferred.parquet")
                text = json.dumps(summary, indent=2) + "\n"
                (tmp / "summary.json").write_text(text, encoding="utf-8")
            note = {"audit_after": audit.count()}
            at = swap.commit(target, tmp, note)  # the new set goes live, even after a kill
            audit_went_live(target, audit, note, at)
            swap.done(target)
    finally:
        audit.close()
    say(f"wrote {summary['rms']:,} RM lists to {target}")
    return target, summary


def recover_lists(lists_root: Path, audit: AuditLog, say: Say = lambda _m: None) -> int:
    """Finish what a killed `keepwell plan` left in `lists_root` (`keepwell.swap.recover`): an
    interrupted swap goes live with its audit entry (once), leftover temporary and old folders of
    any date go. Returns the swaps finished."""
    pending = swap.recover(lists_root, LIST_FOLDER)
    for target, entry in pending:
        at = dt.datetime.fromisoformat(entry["at"])
        audit_went_live(target, audit, entry["note"], at)
        swap.done(target)
        say(f"finished the interrupted swap of {target}")
    return len(pending)


def audit_went_live(target: Path, audit: AuditLog, note: dict[str, Any], at: dt.datetime) -> bool:
    """The one audit entry of the list set now live in `target`, read from its files (listed
    customers, model versions), unless a `keepwell plan` entry for its day was recorded after
    the journal's `audit_after` call. True when this recorded it."""
    day = dt.date.fromisoformat(target.name)
    for e in audit.entries(since=at - dt.timedelta(seconds=1)):
        done = e.endpoint == PLAN_ENDPOINT and e.features_as_of == day
        if done and e.call_id > int(note["audit_after"]):
            return False
    ids = [
        str(c)
        for rm in rm_lists(target)
        for c in pq.read_table(target / f"{rm}.parquet", columns=["customer_id"])[
            "customer_id"
        ].to_pylist()
    ]
    if not ids:
        return False
    versions = json.loads((target / "summary.json").read_text(encoding="utf-8"))["model_versions"]
    audit.record(PLANNER.key_id, PLANNER.role, PLAN_ENDPOINT, ids, versions, day, 200)
    return True


def check_identical(a: Path, b: Path) -> list[str]:
    """Names of files that differ between two list folders (for tests and `--check`)."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    return [
        n
        for n in names
        if not ((a / n).is_file() and (b / n).is_file())
        or (a / n).read_bytes() != (b / n).read_bytes()
    ]


__all__ = ["check_identical", "load_scorer", "recover_lists", "write_plan"]
