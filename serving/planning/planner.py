"""The daily callback planner: each RM's ordered list for one day (pure; no I/O).

`compose_plan(scored, mandatory, carried, capacity, day, config)` turns the scored frame (every
customer's probabilities, tiers and decisions) into one task
per listed customer, ranked per RM, under the rules of DESIGN.md section 1 (`keepwell plan` reads
the inputs and writes the files: `serving.planning.job`).

The order of a list, and who is on it:

1. **Mandatory tasks** (`serving.decisions.rules.due_tasks`: first callback within 7 days of a
purchase,
   quarterly follow-up, complaint first response within 24 hours and resolution within 7 working
   days), overdue first, then by deadline. All of them are listed, whatever the capacity: they are
   commitments to the customer and the regulator; an RM whose mandatory tasks exceed the day's
   capacity is reported as overloaded in the summary.
2. **Carried risk tasks**: a risk task of an earlier list (up to `planner.carry_over_days` back)
   that is not done (no outcome, or `no_answer`) keeps its original deadline and comes next.
3. **New risk tasks**: customers whose tier-matrix cell says to contact them (risk tier High or
   Medium from either probability, `tiers.matrix`), ranked by `planner.rank_by`:
   * `value_at_risk` (default): value score x (p_churn + `complaint_weight` x p_complaint), the
     expected value at risk with the complaint probability as the second trigger;
   * `risk`: p_churn + `complaint_weight` x p_complaint, value ignored;
   * `effect` (old name `uplift`): value score x the callback effect model's estimated
     reduction in churn probability from a call (column `estimated_effect`).
   Risk tasks (carried, then new) fill each RM's capacity left after the mandatory tasks.
   Special-care customers (elderly or disabled) are never dropped by capacity, and they are
   routed to a person (`tiers.special_care`): a special-care risk task due today (the tier
   matrix's `within_working_days` is 0) or overdue is listed even past the capacity; one that
   does not fit and can wait is *deferred* with its deadline (`Plan.deferred`; the next day's
   plan carries it over, so it is listed on its deadline at the latest). Low-ranked ordinary
   risk tasks are what capacity drops.

Who gets no new risk task (`serving.decisions.selection`, shared with the decision simulation):
a customer in the randomised risk holdout (`in_holdout`: the control
group that lets the effect of risk calls be measured), a customer whose policy callback is
currently held out (`callback_holdout`: a risk call would contaminate that experiment), and a
customer contacted recently (`recently_contacted`). A customer with a mandatory task and a
risk-tier contact gets one task carrying both (the mandatory rule; `rules` ends with "risk").

Every customer appears at most once a day (`task_id` = "<day>:<customer_id>").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from keepwell.words import current_name
from serving.decisions.selection import risk_candidates, within_capacity
from serving.records.outcomes import task_id

if TYPE_CHECKING:
    from keepwell.config import Config
    from serving.decisions.calendar import WorkingCalendar

MANDATORY_RULES = ("complaint_response", "complaint_resolution", "post_sale", "quarterly")
RISK = "risk"
RANK_BY = ("value_at_risk", "risk", "effect")
ESTIMATE = "estimated_effect"  # the scored frame's column rank_by effect needs
# columns `compose_plan` needs in the scored frame (one row per active customer)
SCORED_COLUMNS = (
    "customer_id",
    "rm_id",
    "branch_id",
    "segment",
    "value_score",
    "value_tier",
    "risk_tier",
    "churn_probability",
    "complaint_probability",
    "action",
    "channel",
    "rule_channel",
    "special_care",
    "within_working_days",
)
PLAN_COLUMNS = (
    "rank",
    "customer_id",
    "rm_id",
    "branch_id",
    "segment",
    "rule",
    "rules",
    "deadline",
    "overdue",
    "carried_from",
    "channel",
    "special_care",
    "value_tier",
    "risk_tier",
    "churn_probability",
    "complaint_probability",
    "rank_score",  # the score that ranked the task (whatever rank_by chose)
    "action",
    "detail",
)
_KIND_ORDER = {"mandatory": 0, "carried": 1, "risk": 2}


class PlanError(ValueError):
    """The planner's inputs do not fit; the message names the column or value."""


@dataclass
class Plan:
    """One day's tasks (one row per customer, `PLAN_COLUMNS` plus task_id, in (rm_id, rank)
    order) and what did not make the lists."""

    day: dt.date
    rank_by: str
    tasks: pd.DataFrame
    capacity: pd.Series  # rm_id -> tasks a day
    held_out: pd.DataFrame  # customers a risk task would have gone to, but in the risk holdout
    dropped: int  # ordinary risk tasks that capacity dropped
    deferred: pd.DataFrame  # special-care risk tasks for a later day: customer_id, rm_id,
    # deadline, carried_from (`keepwell plan` carries them over)
    stats: dict[str, Any] = field(default_factory=dict)


def ranking_score(scored: pd.DataFrame, rank_by: str, config: Config) -> np.ndarray:
    """The score risk tasks are ranked by (higher first), see the module docstring."""
    rank_by = current_name(rank_by, "rank_by")
    if rank_by not in RANK_BY:
        raise PlanError(f"rank_by must be one of {list(RANK_BY)}, got {rank_by!r}")
    risk = scored["churn_probability"].to_numpy(float) + config.planner.complaint_weight * scored[
        "complaint_probability"
    ].to_numpy(float)
    value = np.maximum(scored["value_score"].to_numpy(float), 0.0)
    if rank_by == "risk":
        return risk
    if rank_by == "value_at_risk":
        return value * risk
    if ESTIMATE not in scored.columns:
        raise PlanError(
            "rank_by effect needs the estimated callback effect per customer "
            f"(column {ESTIMATE!r}); train the callback effect model first"
        )
    return value * scored[ESTIMATE].to_numpy(float)


def _check(scored: pd.DataFrame, mandatory: pd.DataFrame, carried: pd.DataFrame) -> None:
    missing = [c for c in SCORED_COLUMNS if c not in scored.columns]
    if missing:
        raise PlanError(f"the scored frame lacks column(s) {missing}")
    if not pd.Index(scored["customer_id"].to_numpy(dtype=object)).is_unique:
        dupes = scored.loc[scored["customer_id"].duplicated(), "customer_id"].head(5).tolist()
        raise PlanError(f"the scored frame has duplicate customer_id(s), e.g. {dupes}")
    for name, frame, cols in (
        ("mandatory", mandatory, ("customer_id", "rule", "rules", "deadline", "overdue", "detail")),
        ("carried", carried, ("customer_id", "deadline", "carried_from")),
    ):
        absent = [c for c in cols if c not in frame.columns]
        if absent:
            raise PlanError(f"the {name} tasks lack column(s) {absent}")
    unknown = sorted(set(mandatory["rule"].astype(str)) - set(MANDATORY_RULES))
    if unknown:
        raise PlanError(f"unknown mandatory rule(s) {unknown}; known: {list(MANDATORY_RULES)}")


def risk_deadlines(within: np.ndarray, day: dt.date, calendar: WorkingCalendar) -> pd.DatetimeIndex:
    """The end of the day that is `within` working days after `day` (0: the end of `day`)."""
    start = pd.Timestamp(day, tz="UTC")
    within = np.asarray(within, dtype=np.int64)
    out = np.full(len(within), (start + pd.Timedelta(days=1)).value, dtype=np.int64)
    for n in np.unique(within[within > 0]).tolist():
        due = calendar.add_working_days(start.to_pydatetime(), int(n), end_of_day=True)
        out[within == n] = due.value
    return pd.DatetimeIndex(out.view("datetime64[ns]")).tz_localize("UTC")


def _naive_ns(values) -> np.ndarray:
    """UTC moments as naive datetime64[ns] (tz-aware `to_numpy` would box every value)."""
    ts = (
        pd.to_datetime(pd.Series(values), utc=True)
        if not isinstance(values, pd.DatetimeIndex)
        else values
    )
    ts = ts.dt.tz_localize(None) if isinstance(ts, pd.Series) else ts.tz_localize(None)
    return np.asarray(ts.to_numpy("datetime64[ns]"))


def compose_plan(
    scored: pd.DataFrame,
    mandatory: pd.DataFrame,
    carried: pd.DataFrame,
    capacity: pd.Series,
    day: dt.date,
    config: Config,
    calendar: WorkingCalendar,
    *,
    rank_by: str | None = None,
) -> Plan:
    """The day's plan (see the module docstring).

    `scored`: one row per active customer with `SCORED_COLUMNS` (tiers and decisions of
    `serving.decisions.tiers`, calibrated probabilities) and optionally `FLAG_COLUMNS` (missing:
    False) and
    `estimated_effect`. `mandatory`: one row per customer
    (`serving.decisions.rules.first_task_per_customer`
    output with customer_id as a column). `carried`: unfinished risk tasks of earlier lists,
    customer_id, deadline, carried_from. `capacity`: rm_id -> tasks a day (an RM missing from it
    has capacity 0 for risk tasks)."""
    rank_by = current_name(rank_by or config.planner.rank_by, "rank_by")
    _check(scored, mandatory, carried)
    scored = scored.reset_index(drop=True)
    score = ranking_score(scored, rank_by, config)
    m, m_pos, c, c_pos, taken = _claimed(scored, mandatory, carried)
    # new risk candidates: the rule the decision simulation applies too
    found = risk_candidates(scored, taken)
    contact, held, cand = found.contact, found.held, np.flatnonzero(found.callable)
    risk_deadline = _naive_ns(
        risk_deadlines(scored["within_working_days"].to_numpy(int), day, calendar)
    )
    rules = np.where(contact[m_pos], m["rules"].astype(str).to_numpy() + "," + RISK, m["rules"])
    parts = [
        _part(m_pos, "mandatory", m["rule"].astype(str).to_numpy(), rules,
              _naive_ns(m["deadline"]), detail=m["detail"].to_numpy(dtype=object)),
        _part(c_pos, "carried", RISK, RISK, _naive_ns(c["deadline"]),
              carried_from=c["carried_from"].to_numpy(dtype=object)),
        _part(cand, "risk", RISK, RISK, risk_deadline[cand]),
    ]  # fmt: skip
    filled = [p for p in parts if len(p)]
    tasks = pd.concat(filled, ignore_index=True) if filled else parts[0]
    day_start = np.datetime64(day, "ns")
    tasks = _in_list_order(tasks, scored, score, day_start)
    keep, care = _within_room(tasks, capacity, day_start)
    deferred = _deferred(tasks[~keep & care], scored, day)
    dropped = int((~keep & ~care).sum())
    tasks = tasks[keep].reset_index(drop=True)
    tasks["rank"] = tasks.groupby("rm_id", sort=False).cumcount() + 1
    out = _finish(tasks, scored, day, config)
    held_frame = pd.DataFrame(
        {
            "customer_id": scored["customer_id"].to_numpy(dtype=object)[held],
            "rm_id": scored["rm_id"].to_numpy(dtype=object)[held],
            "score": score[held],
        }
    )
    return Plan(day, rank_by, out, capacity, held_frame, dropped, deferred)


def _positions(index: pd.Index, frame: pd.DataFrame) -> np.ndarray:
    """Each row's position in the scored frame by customer_id (-1: not scored)."""
    return index.get_indexer(frame["customer_id"].astype(str).to_numpy(dtype=object))


def _claimed(scored: pd.DataFrame, mandatory: pd.DataFrame, carried: pd.DataFrame):
    """The mandatory tasks of scored customers, the carried risk tasks of scored customers
    without one, their positions, and which customers they take."""
    # positions by id through a hash index (pandas 3's `isin` on Arrow strings loops in Python)
    index = pd.Index(scored["customer_id"].astype(str).to_numpy(dtype=object))
    # mandatory: every due task of a customer in the scored frame
    m_all = _positions(index, mandatory)
    m = mandatory[m_all >= 0]
    m_pos = m_all[m_all >= 0]
    # carried: unfinished risk tasks of customers still scored and without a mandatory task
    c_all = _positions(index, carried)
    in_mandatory = np.zeros(len(scored), bool)
    in_mandatory[m_pos] = True
    keep_c = (c_all >= 0) & ~in_mandatory[np.maximum(c_all, 0)]
    c = carried[keep_c].assign(_pos=c_all[keep_c]).drop_duplicates("customer_id", keep="first")
    c_pos = c["_pos"].to_numpy(int)
    taken = np.zeros(len(scored), bool)
    taken[m_pos] = True
    taken[c_pos] = True
    return m, m_pos, c, c_pos, taken


def _part(pos, kind: str, rule, rules, deadline, detail=None, carried_from=None) -> pd.DataFrame:
    """The candidate tasks of one kind, by position in the scored frame."""
    columns = {"pos": pos, "kind": kind, "rule": rule, "rules": rules, "deadline": deadline}
    return pd.DataFrame(columns | {"detail": detail, "carried_from": carried_from})


def _in_list_order(tasks, scored, score, day_start) -> pd.DataFrame:
    """Within an RM: mandatory (overdue first, then by deadline), carried (by deadline), then
    new risk tasks by score alone."""
    pos = tasks["pos"].to_numpy(int)
    tasks["rm_id"] = scored["rm_id"].to_numpy(dtype=object)[pos]
    tasks["score"] = score[pos]
    tasks["special_care"] = scored["special_care"].to_numpy(bool)[pos]
    tasks["kind_order"] = tasks["kind"].map(_KIND_ORDER).to_numpy(int)
    deadline = tasks["deadline"].to_numpy("datetime64[ns]")
    tasks["overdue"] = deadline < day_start
    deadline_ns = deadline.view("int64")
    new_risk = tasks["kind"].eq("risk").to_numpy()
    tasks["_when"] = np.where(new_risk, 0, deadline_ns)
    tasks["_score"] = np.where(new_risk, tasks["score"].to_numpy(float), 0.0)
    return tasks.sort_values(
        ["rm_id", "kind_order", "overdue", "_when", "_score", "pos"],
        ascending=[True, True, False, True, False, True],
        kind="stable",
    ).reset_index(drop=True)


def _within_room(tasks: pd.DataFrame, capacity: pd.Series, day_start):
    """Which tasks the lists keep, and which are special care: mandatory tasks and special-care
    tasks due today or overdue always; the other risk tasks take the room left in list order
    (carried, then by score)."""
    risk_kind = (tasks["kind"] != "mandatory").to_numpy()
    care = tasks["special_care"].to_numpy(bool)
    due_today = tasks["deadline"].to_numpy("datetime64[ns]") <= day_start + np.timedelta64(1, "D")
    forced = risk_kind & care & due_today  # special care due today or overdue: always listed
    cap = capacity.reindex(tasks["rm_id"].astype(str)).fillna(0).to_numpy(int)
    per_rm = tasks.assign(m=~risk_kind, f=forced).groupby("rm_id", sort=False)
    listed = per_rm["m"].transform("sum").to_numpy(int) + per_rm["f"].transform("sum").to_numpy(int)
    room = cap - listed
    keep = within_capacity(tasks["rm_id"].to_numpy(dtype=object), risk_kind & ~forced, room)
    return keep, care


def _deferred(rows: pd.DataFrame, scored: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """A special-care task that does not fit is deferred (kept with its deadline for a later
    day); an ordinary one is dropped."""
    deferred = pd.DataFrame(
        {
            "customer_id": scored["customer_id"].to_numpy(dtype=object)[rows["pos"].to_numpy(int)],
            "rm_id": rows["rm_id"].to_numpy(dtype=object),
            "deadline": rows["deadline"].to_numpy("datetime64[ns]"),
            "carried_from": rows["carried_from"]
            .where(rows["carried_from"].notna(), day)
            .to_numpy(dtype=object),
        }
    )
    deferred["deadline"] = pd.to_datetime(deferred["deadline"]).dt.tz_localize("UTC")
    return deferred


def rule_actions(config: Config) -> dict[str, str]:
    """The action text of each mandatory rule, with the configured deadlines."""
    p = config.policy
    return {
        "post_sale": f"first callback after the purchase (within {p.first_callback_days} days)",
        "quarterly": "quarterly follow-up call",
        "complaint_response": (
            f"first response to the complaint (within {p.complaint_first_response_hours} hours)"
        ),
        "complaint_resolution": (
            f"resolve the complaint (within {p.complaint_resolution_working_days} working days)"
        ),
    }


def _finish(
    tasks: pd.DataFrame, scored: pd.DataFrame, day: dt.date, config: Config
) -> pd.DataFrame:
    """The public columns of the tasks: the scored facts at each task's position, risk-task channel
    from the tier matrix, mandatory-task channel from the segment strategy."""
    pos = tasks["pos"].to_numpy(int)
    mandatory = tasks["kind"].eq("mandatory").to_numpy()
    channel = np.where(
        mandatory,
        scored["rule_channel"].to_numpy(dtype=object)[pos],
        scored["channel"].to_numpy(dtype=object)[pos],
    )
    # a carried risk task whose matrix cell has become "no contact": the segment's channel
    fallback = scored["rule_channel"].to_numpy(dtype=object)[pos]
    channel = np.where(channel == "none", fallback, channel)
    # a complaint is answered by a person, never by questionnaire
    complaint = tasks["rule"].astype(str).str.startswith("complaint").to_numpy(bool)
    human = config.tiers.special_care.human_channel
    channel = np.where(complaint & (channel == "e_questionnaire"), human, channel)
    out = pd.DataFrame(
        {
            "rank": tasks["rank"].to_numpy(int),
            "customer_id": scored["customer_id"].to_numpy(dtype=object)[pos],
            "rm_id": tasks["rm_id"].to_numpy(dtype=object),
            "branch_id": scored["branch_id"].to_numpy(dtype=object)[pos],
            "segment": scored["segment"].to_numpy(dtype=object)[pos],
            "rule": tasks["rule"].to_numpy(dtype=object),
            "rules": tasks["rules"].to_numpy(dtype=object),
            "deadline": tasks["deadline"].to_numpy("datetime64[ns]"),
            "overdue": tasks["overdue"].to_numpy(bool),
            "carried_from": tasks["carried_from"].to_numpy(dtype=object),
            "channel": channel,
            "special_care": tasks["special_care"].to_numpy(bool),
            "value_tier": scored["value_tier"].to_numpy(dtype=object)[pos],
            "risk_tier": scored["risk_tier"].to_numpy(dtype=object)[pos],
            "churn_probability": scored["churn_probability"].to_numpy(float)[pos],
            "complaint_probability": scored["complaint_probability"].to_numpy(float)[pos],
            "rank_score": tasks["score"].to_numpy(float),
            "action": np.where(
                mandatory,
                tasks["rule"].map(rule_actions(config)).to_numpy(dtype=object),
                scored["action"].to_numpy(dtype=object)[pos],
            ),
            "detail": tasks["detail"].to_numpy(dtype=object),
        }
    )
    out["deadline"] = pd.to_datetime(out["deadline"]).dt.tz_localize("UTC")
    out.insert(1, "task_id", [task_id(day, c) for c in out["customer_id"]])
    return out
