"""What `keepwell monitor` reads besides the features: the stability of the RMs' top N across
the newest two list days, and the champions with their report (`reporting.monitoring.run`).

The champions come through `serving.scoring.loading` (with its `ServingSetupError` messages) and
the daily list folders through `serving.planning`. The recommendation is advice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keepwell.words import TARGETS
from reporting.monitoring.drift import (
    MonitoringError,
    MonitoringSettings,
    pick_list_days,
    stability_summary,
    top_n_overlap,
)
from reporting.monitoring.run import monitor
from serving.planning.list_format import ListFormatError, list_dates, read_list_table, rm_lists
from serving.scoring.loading import load_champion, registry_uri

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace


def read_top_lists(folder: Path, rm_ids: Sequence[str], n: int) -> dict[str, list[str]]:
    """The customer ids of each RM's top `n` (by `rank`) in a day's list folder."""
    out = {}
    for rm in rm_ids:
        path = folder / f"{rm}.parquet"
        try:
            table = read_list_table(path, ["rank", "customer_id"]).to_pandas()
        except (ListFormatError, KeyError, ValueError, OSError) as exc:
            raise MonitoringError(f"cannot read rank and customer_id from {path}: {exc}") from None
        top = table.sort_values("rank", kind="stable").head(n)
        out[rm] = top["customer_id"].astype(str).tolist()
    return out


def list_stability(lists_root: Path, config: Config, n: int) -> dict[str, Any]:
    """The `top_n_stability` section of the monitoring report: each RM's top `n` on the newest
    two list days that are consecutive working days (`list_dates` finds the days, `rm_lists` the
    RMs' files, both `serving.planning.list_format`); says why when there are none."""

    policy = config.policy
    pair, section = pick_list_days(list_dates(lists_root), policy.working_days,
                                   policy.holidays, n)  # fmt: skip
    if pair is None:
        return section or {}
    tops = []
    for day in pair:
        folder = lists_root / day.isoformat()
        tops.append(read_top_lists(folder, rm_lists(folder), n))
    return stability_summary(top_n_overlap(tops[0], tops[1], n), pair, n)


def monitor_champions(
    ws: Workspace,
    as_of: str | None,
    data: Path | None,
    reference: str | None,
    progress: Callable[[str], None],
) -> Any:
    """Load the champions, read the list stability and run the monitoring job."""
    uri = registry_uri(ws)
    models = {t: load_champion(t, ws.config, uri) for t in TARGETS}
    progress("champions: " + ", ".join(f"{m.name} v{m.version}" for m in models.values()))
    n = MonitoringSettings.from_config(ws.config).top_n
    stability = list_stability(ws.path(ws.config.paths.lists), ws.config, n)
    return monitor(ws, ws.config, models, as_of=as_of, data_dir=data, reference=reference,
                   stability=stability, progress=progress)  # fmt: skip
