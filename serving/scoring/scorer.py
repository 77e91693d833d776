"""The scoring core: what to do about each customer and why, with no HTTP in it.

`Scorer.load(workspace, config)` loads the two `champion` models (churn, complaint) from the
MLflow registry and the online feature snapshot, and computes once everything that does not
depend on a request: the snapshot as typed columns (`serving.scoring.snapshot.Snapshot`), every
customer's
value tier (cut points fitted on the whole book), the due policy callbacks as of the snapshot date,
the customer -> RM map behind RM-scoped keys, and the decision table. A request then costs one
LightGBM `pred_contrib` pass per model: the contributions give the margin (their sum, so the
probability is exactly `FittedModel.predict_proba`) and the reasons, without a second predict or a
second explainer. LightGBM runs on one thread (`THREADS`): parallelism comes from workers.

Reasons explain the churn model, unless the complaint probability is in a strictly higher tier
of its own cut points (`tiers.risk_cut_points`) than the churn probability: then the complaint
model's drivers are what the RM needs to hear. On a tie churn wins (it is what the callback is for).

Explanations are computed on request (the README's "Speed, and where explanations are computed"
and `bench/serving_bench.py` have the measurements): precomputing them for the whole snapshot
would cost every worker minutes and most of a gigabyte per million customers, and a cache would
save under a millisecond of a request whose HTTP path costs more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
import pandas as pd

from features.definitions import default_spec
from keepwell.words import TARGETS, CallbackRule
from serving.decisions.rules import first_task_per_customer
from serving.decisions.tiers import RISK_LABELS, decide_frame, target_tier, tier_code
from serving.decisions.value import ValueTiers, value_inputs, value_scores
from serving.scoring.loading import load_parts
from serving.scoring.model import DECISION_FEATURES, ServedModel, ServingSetupError
from serving.scoring.schemas import Reason, ScoredCustomer
from serving.scoring.snapshot import Rows, Snapshot
from training.fitted import probabilities
from training.reasons import explain

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from serving.records.keys import Principal


THREADS = 1
RISK_RANK = {"low": 0, "medium": 1, "high": 2}
MAX_REASONS = 3


class Forbidden(PermissionError):
    """The caller's role may not score some of the requested customers."""

    def __init__(self, refused: int, total: int, role: str):
        self.refused, self.total = refused, total
        super().__init__(
            f"{refused} of {total} customer id(s) are not in the book of this key's RM ({role}); "
            "an RM key scores only that RM's customers"
        )


class Scorer:
    """Scores customers of one snapshot with one pair of models (see the module docstring).

    Build it with `Scorer.load` (registry, store, data folder) or `Scorer.build` (objects in
    hand, as tests and benchmarks do). Thread-safe for concurrent `score_*` calls.
    """

    def __init__(
        self,
        models: Mapping[str, ServedModel],
        snapshot: Snapshot,
        as_of: dt.date,
        config: Config,
        *,
        value_tiers: ValueTiers,
        snapshot_value_tier: np.ndarray,
        rm_ids: np.ndarray | None,
        due: pd.DataFrame | None,
        row_features: Sequence[str],
        notes: Sequence[str] = (),
        source: Mapping[str, Any] | None = None,
    ):
        self.models = dict(models)
        self.snapshot = snapshot
        self.as_of = as_of
        self.config = config
        self.value_tiers = value_tiers
        self.snapshot_value_tier = snapshot_value_tier
        self.rm_ids = rm_ids
        self.row_features = tuple(row_features)
        self.notes = list(notes)
        self.source = dict(source or {})
        self.model_versions = {t: m.version for t, m in self.models.items()}
        self.never_as_reason = tuple(
            sorted(
                {*config.reasons.never_as_reason}.union(
                    *(m.texts.never_as_reason for m in self.models.values())
                )
            )
        )
        self.top_k = min(config.reasons.top_k, MAX_REASONS)
        due_index = due.index if due is not None else pd.Index([])
        pos = snapshot.positions(list(due_index))
        self._due_date = np.full(len(snapshot), None, dtype=object)
        self._due_rule = np.full(len(snapshot), None, dtype=object)
        if due is not None and len(pos):
            keep = pos >= 0
            self._due_date[pos[keep]] = due["callback_due"].to_numpy(dtype=object)[keep]
            self._due_rule[pos[keep]] = due["callback_rule"].to_numpy(dtype=object)[keep]
        self._decisions: dict[tuple, tuple[str, str, int]] = {}

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        models: Mapping[str, ServedModel],
        snapshot: Snapshot,
        as_of: dt.date,
        config: Config,
        *,
        rm_of: Mapping[str, str] | pd.Series | None = None,
        due_tasks: pd.DataFrame | None = None,
        notes: Sequence[str] = (),
        source: Mapping[str, Any] | None = None,
    ) -> Scorer:
        """A scorer from loaded parts: `rm_of` maps customer_id -> rm_id (None: RM keys are
        refused everything); `due_tasks` is `serving.decisions.rules.due_tasks` output (None: no
        callback is reported due)."""
        missing_targets = [t for t in TARGETS if t not in models]
        if missing_targets:
            raise ServingSetupError(
                f"the scorer needs a model per target; missing {missing_targets}"
            )
        needed = sorted({f for m in models.values() for f in m.fitted.features})
        absent = [f for f in needed if f not in snapshot.columns]
        if absent:
            raise ServingSetupError(f"the feature snapshot lacks model feature(s) {absent}")
        scores = value_scores(
            snapshot.frame(value_inputs(snapshot.columns, config)), config, absent_is_null=True
        )
        value_tiers = ValueTiers.fit(scores, config)
        book_tier = value_tiers.tier(scores)
        rm_ids = None
        if rm_of is not None:
            series = rm_of if isinstance(rm_of, pd.Series) else pd.Series(dict(rm_of), dtype=object)
            rm_ids = series.reindex(pd.Index(snapshot.ids)).to_numpy(dtype=object)
            rm_ids = np.where(pd.isna(rm_ids), None, rm_ids)
        due = _first_due(due_tasks) if due_tasks is not None else None
        extra = set(DECISION_FEATURES) | set(config.tiers.value_weights)
        row_features = [n for n in snapshot.dtypes if n in needed or n in extra]
        scorer = cls(
            models,
            snapshot,
            as_of,
            config,
            value_tiers=value_tiers,
            snapshot_value_tier=book_tier,
            rm_ids=rm_ids,
            due=due,
            row_features=row_features,
            notes=notes,
            source=source,
        )
        scorer._warm_decisions()
        return scorer

    @classmethod
    def load(
        cls, workspace: Workspace, config: Config, *, data_dir: Path | str | None = None
    ) -> Scorer:
        """Load the champions, the online store and (when found) the bank's data folder.

        Raises `ServingSetupError` naming what is missing and the command that creates it.
        """
        return cls.build(**load_parts(workspace, config, data_dir=data_dir))

    # -- facts ----------------------------------------------------------------------------------
    @property
    def features_as_of(self) -> dt.date:
        return self.as_of

    def row_spec(self) -> Any:
        """The `FeatureSpec` of the fields a `/score/features` row must carry."""

        return default_spec(self.config).select(self.row_features)

    def known(self, customer_ids: Sequence[str]) -> list[bool]:
        """Whether each id is a customer of the loaded snapshot."""
        return [p >= 0 for p in self.snapshot.positions(list(customer_ids)).tolist()]

    def rm_of(self, customer_ids: Sequence[str]) -> list[str | None]:
        """The RM of each id (None: unknown id, or no RM map)."""
        pos = self.snapshot.positions(list(customer_ids))
        if self.rm_ids is None:
            return [None] * len(pos)
        return [self.rm_ids[p] if p >= 0 else None for p in pos.tolist()]

    # -- access ---------------------------------------------------------------------------------
    def authorize(self, customer_ids: Sequence[str], principal: Principal) -> None:
        """Raise `Forbidden` unless `principal` may score every id. For an RM key an unknown id
        is refused like another RM's customer, so that a refusal does not tell which ids exist."""
        if principal.role in ("crm", "admin"):
            return
        owners = self.rm_of(customer_ids)
        refused = sum(not principal.can_score(o) for o in owners)
        if refused:
            raise Forbidden(refused, len(owners), principal.role)

    # -- scoring --------------------------------------------------------------------------------
    def score_ids(self, customer_ids: Sequence[str], principal: Principal) -> list[ScoredCustomer]:
        """One result per id, in request order; an id not in the snapshot is a `found=False`
        item. Raises `Forbidden` for an RM key and any id outside that RM's book."""
        ids = [str(i) for i in customer_ids]
        self.authorize(ids, principal)
        pos = self.snapshot.positions(ids)
        known = pos >= 0
        scored = iter(
            self._score(
                self.snapshot.take(pos[known]),
                self.snapshot_value_tier[pos[known]],
                self._due_date[pos[known]],
                self._due_rule[pos[known]],
            )
        )
        missing = f"unknown customer id: not in the feature snapshot of {self.as_of}"
        return [
            next(scored)
            if ok
            else ScoredCustomer(
                customer_id=cid, found=False, error=missing, model_versions=self.model_versions
            )
            for cid, ok in zip(ids, known.tolist(), strict=True)
        ]

    def score_rows(
        self, records: Sequence[Mapping[str, Any]], principal: Principal
    ) -> list[ScoredCustomer]:
        """Score caller-supplied feature rows (validated `/score/features` rows as dicts), in
        order. The value tier comes from the rows' own features against the book's cut points;
        a due callback is reported when the id is a customer of the snapshot. RM keys may send
        only their own customers' ids."""
        ids = [str(r["customer_id"]) for r in records]
        self.authorize(ids, principal)
        rows = Rows.from_records(records, {n: self.snapshot.dtypes[n] for n in self.row_features})
        frame = rows.frame(value_inputs(rows.columns, self.config))
        tier = self.value_tiers.tier(value_scores(frame, self.config, absent_is_null=True))
        pos = self.snapshot.positions(ids)
        due_date = np.where(pos >= 0, self._due_date[np.maximum(pos, 0)], None)
        due_rule = np.where(pos >= 0, self._due_rule[np.maximum(pos, 0)], None)
        return self._score(rows, tier, due_date, due_rule)

    def _score(
        self, rows: Rows, value_tier: np.ndarray, due_date: np.ndarray, due_rule: np.ndarray
    ) -> list[ScoredCustomer]:
        n = len(rows)
        if n == 0:
            return []
        prob: dict[str, np.ndarray] = {}
        contrib: dict[str, np.ndarray] = {}
        for target, served in self.models.items():
            fitted = served.fitted
            x = rows.matrix(fitted.features, fitted.categories)
            prob[target], contrib[target] = probabilities(
                fitted, lambda lo, hi, x=x: x[lo:hi], n, threads=THREADS, contributions=True
            )
        churn_tier = target_tier(prob["churn"], "churn", self.config)
        complaint_tier = target_tier(prob["complaint"], "complaint", self.config)
        risk = RISK_LABELS[np.maximum(churn_tier, complaint_tier)]
        by_complaint = complaint_tier > churn_tier
        reasons: list[list[Any]] = [[] for _ in range(n)]
        for target, mask in (("churn", ~by_complaint), ("complaint", by_complaint)):
            if mask.any():
                self._explain(target, rows, mask, contrib[target], reasons)
        decisions = self._decide(rows, value_tier, risk)
        out = []
        for i in range(n):
            action, channel, priority = decisions[i]
            due = due_date[i]
            out.append(
                ScoredCustomer(
                    customer_id=rows.ids[i],
                    found=True,
                    churn_probability=float(prob["churn"][i]),
                    complaint_probability=float(prob["complaint"][i]),
                    risk_tier=tier_code(risk[i]),
                    value_tier=tier_code(value_tier[i]),
                    reasons=[
                        Reason(
                            feature=r.feature,
                            value=r.value,
                            direction=r.direction,
                            sentence=r.sentence,
                        )
                        for r in reasons[i]
                    ],
                    action=action,
                    channel=channel,
                    callback_due=due,
                    callback_rule=due_rule[i] if due is not None else None,
                    priority=priority,
                    model_versions=self.model_versions,
                    features_as_of=self.as_of,
                )
            )
        return out

    def _explain(
        self, target: str, rows: Rows, mask: np.ndarray, contrib: np.ndarray, out: list[list]
    ) -> None:

        served = self.models[target]
        sub = rows if mask.all() else rows.subset(mask)
        explained = explain(
            served.fitted,
            sub.values(),  # type: ignore[arg-type]  # a lazy stand-in for the feature frame
            served.texts,
            top_k=self.top_k,
            never_as_reason=self.never_as_reason,
            contributions=contrib if mask.all() else contrib[mask],
        )
        for i, row_reasons in zip(np.flatnonzero(mask).tolist(), explained, strict=True):
            out[i] = row_reasons

    # -- decisions ------------------------------------------------------------------------------
    def _key(self, value: Any, risk: Any, segment: Any, elderly: Any, disabled: Any) -> tuple:
        def flag(v: Any) -> bool:
            return (
                bool(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else False
            )

        return (tier_code(str(value)), tier_code(str(risk)), segment, flag(elderly), flag(disabled))

    def _decide(self, rows: Rows, value_tier: np.ndarray, risk: np.ndarray) -> list[tuple]:
        """(action, channel, priority) per row from the memoised decision table: the decision
        depends only on five small categorical inputs, so `decide_frame` runs once per new
        combination instead of once per request."""
        cols = [rows.columns.get(n) for n in DECISION_FEATURES]
        n = len(rows)
        values = [c if c is not None else np.full(n, None, dtype=object) for c in cols]
        keys = [
            self._key(value_tier[i], risk[i], values[0][i], values[1][i], values[2][i])
            for i in range(n)
        ]
        new = [k for k in dict.fromkeys(keys) if k not in self._decisions]
        if new:
            self._add_decisions(new)
        return [self._decisions[k] for k in keys]

    def _add_decisions(self, keys: Sequence[tuple]) -> None:
        frame = pd.DataFrame(
            keys,
            columns=["value_tier", "risk_tier", "segment", "is_elderly", "is_disabled"],
            dtype=object,
        )
        decided = decide_frame(frame, self.config)
        for key, action, channel, priority in zip(
            keys, decided["action"], decided["channel"], decided["priority"], strict=True
        ):
            self._decisions[key] = (str(action), str(channel), int(priority))

    def _warm_decisions(self) -> None:
        """Tabulate the decisions of every combination the book holds, for every risk tier."""
        segment = self.snapshot.columns.get("segment")
        segments = [None] if segment is None else list(dict.fromkeys(segment.tolist()))
        keys = [
            (v, r, s, e, d)
            for v in ("vip", "priority", "standard")
            for r in RISK_RANK
            for s in segments
            for e in (False, True)
            for d in (False, True)
        ]
        self._add_decisions(keys)


def _first_due(tasks: pd.DataFrame) -> pd.DataFrame:
    """Per customer the most urgent due task: callback_due (UTC date of the deadline) and
    callback_rule, indexed by customer_id. Rules outside the API's vocabulary are an error."""

    allowed = set(get_args(CallbackRule))
    unknown = sorted(set(tasks["rule"].dropna().astype(str)) - allowed)
    if unknown:
        raise ServingSetupError(f"policy task rule(s) {unknown} are not API callback rules")
    if tasks.empty:
        return pd.DataFrame({"callback_due": [], "callback_rule": []}, dtype=object)
    first = first_task_per_customer(tasks)
    deadline = pd.to_datetime(first["deadline"], utc=True)
    return pd.DataFrame(
        {
            "callback_due": [d.date() for d in deadline],
            "callback_rule": first["rule"].astype(str).to_numpy(dtype=object),
        },
        index=first.index.astype(str),
    )
