"""What the RM page shows: the templates (Jinja2, autoescaped), display labels, the task rows as the
page and the JSON show them, and the book chart as server-rendered SVG (no JavaScript)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import jinja2

from serving.planning.lists import RISK_TIERS, VALUE_TIERS, DayList
from serving.records.outcomes import DONE_OUTCOMES, OUTCOMES

RULE_LABELS = {
    "complaint_response": "Complaint: first response",
    "complaint_resolution": "Complaint: resolution",
    "post_sale": "Post-sale callback",
    "quarterly": "Quarterly follow-up",
    "risk": "At-risk call",
}
RULE_HINTS = {  # no numbers here: the deadlines come from the policy in the config
    "complaint_response": "answer the complaint",
    "complaint_resolution": "resolve the complaint",
    "post_sale": "follow up a product purchase",
    "quarterly": "regular quarterly contact",
    "risk": "at risk of leaving or complaining",
}
CHANNEL_LABELS = {
    "rm_call": "RM call",
    "call_centre": "Call centre",
    "e_questionnaire": "E-questionnaire",
    "visit": "Visit",
}
SEGMENT_LABELS = {"hnw": "High net worth", "retail": "Retail", "institutional": "Institutional"}
OUTCOME_LABELS = {"reached": "Reached", "declined": "Declined", "no_answer": "No answer"}
RISK_COLOURS = {"High": "#b42318", "Medium": "#c4610a", "Low": "#1f6f8b"}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("serving.http", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOMES],
        value_tiers=VALUE_TIERS,
        risk_tiers=RISK_TIERS,
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(f"rm/{template}").render(**context)


def percent(p: float) -> str:
    value = 100.0 * p
    return "<1 %" if 0 < value < 1 else f"{value:.0f} %"


def when(moment: dt.datetime) -> str:
    """ "Mon 3 Mar 2025, 17:00 UTC"."""
    moment = moment.astimezone(dt.UTC)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} UTC"


def long_day(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


@dataclass(frozen=True)
class Status:
    outcome: str | None
    note: str | None
    recorded_at: dt.datetime | None

    @property
    def done(self) -> bool:
        return self.outcome in DONE_OUTCOMES

    @property
    def label(self) -> str:
        if self.outcome is None:
            return "Open"
        return OUTCOME_LABELS[self.outcome] + ("" if self.done else " · still open")


OPEN = Status(None, None, None)


def statuses(frame) -> dict[str, Status]:
    """Task id -> status from `OutcomeStore.latest(...)`."""
    return {
        r.task_id: Status(r.outcome, r.note, r.recorded_at.to_pydatetime())
        for r in frame.itertuples(index=False)
    }


def task_json(row: dict[str, Any], status: Status) -> dict[str, Any]:
    """A task as `tasks.json` gives it."""
    return {
        "rank": row["rank"],
        "task_id": row["task_id"],
        "customer_id": row["customer_id"],
        "phone_masked": row["phone_masked"],
        "branch_id": row["branch_id"],
        "segment": row["segment"],
        "rule": row["rule"],
        "rules": row["rule_list"],
        "deadline": row["deadline"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "overdue": row["overdue"],
        "carried_from": row["carried_from"].isoformat() if row["carried_from"] else None,
        "channel": row["channel"],
        "special_care": row["special_care"],
        "value_tier": row["value_tier"],
        "risk_tier": row["risk_tier"],
        "churn_probability": row["churn_probability"],
        "complaint_probability": row["complaint_probability"],
        "rank_score": row["rank_score"],
        "action": row["action"],
        "reasons": row["reason_list"],
        "detail": row["detail"],
        "status": "done" if status.done else "open",
        "outcome": status.outcome,
        "note": status.note,
        "recorded_at": (
            status.recorded_at.isoformat().replace("+00:00", "Z") if status.recorded_at else None
        ),
    }


def list_json(listing: DayList, status: dict[str, Status]) -> dict[str, Any]:
    """What `tasks.json` answers: the list of one RM and date with statuses and the summary."""
    return {
        "rm_id": listing.rm_id,
        "date": listing.day.isoformat(),
        "features_as_of": listing.features_as_of.isoformat() if listing.features_as_of else None,
        "model_versions": listing.model_versions,
        "summary": counts(listing, status),
        "tasks": [task_json(t, status.get(t["task_id"], OPEN)) for t in listing.tasks],
    }


def task_view(row: dict[str, Any], status: Status) -> dict[str, Any]:
    """A task as the page shows it (strings ready for the template)."""
    others = [RULE_LABELS[r] for r in row["rule_list"][1:] if r in RULE_LABELS]
    return {
        "rank": row["rank"],
        "task_id": row["task_id"],
        "customer_id": row["customer_id"],
        "anchor": f"t-{row['customer_id']}",
        "phone": row["phone_masked"],
        "segment": SEGMENT_LABELS.get(row["segment"], row["segment"]),
        "value_tier": row["value_tier"],
        "risk_tier": row["risk_tier"],
        "special_care": row["special_care"],
        "churn": percent(row["churn_probability"]),
        "complaint": percent(row["complaint_probability"]),
        "reasons": row["reason_list"][:3],
        "rule": RULE_LABELS[row["rule"]],
        "rule_hint": RULE_HINTS[row["rule"]],
        "other_rules": others,
        "deadline": when(row["deadline"]),
        "overdue": row["overdue"],
        "carried_from": row["carried_from"].isoformat() if row["carried_from"] else None,
        "detail": row["detail"],
        "channel": CHANNEL_LABELS[row["channel"]],
        "action": row["action"],
        "status": status,
        "recorded": when(status.recorded_at) if status.recorded_at else None,
    }


def counts(listing: DayList, status: dict[str, Status]) -> dict[str, Any]:
    """The summary line: tasks, done, overdue (and not done), special care, capacity."""
    tasks = listing.tasks
    done = sum(status.get(t["task_id"], OPEN).done for t in tasks)
    load = listing.load or {}
    capacity = load.get("capacity")
    return {
        "tasks": len(tasks),
        "done": done,
        "open": len(tasks) - done,
        "overdue": sum(t["overdue"] and not status.get(t["task_id"], OPEN).done for t in tasks),
        "special_care": sum(bool(t["special_care"]) for t in tasks),
        "capacity": capacity,
        "load": load.get("load"),
        "book": sum(listing.portfolio.values()),
    }


def book_chart(book: dict[tuple[str, str], int]) -> dict[str, Any]:
    """A 3x3 grid (value tier rows, risk tier columns) of the RM's book, as SVG shapes.

    Each cell is shaded by its share of the largest cell, in the colour of its risk tier; the
    template draws it (rect and text elements with presentation attributes: no inline style)."""
    left, top, cell_w, cell_h, gap = 78, 26, 74, 44, 4
    biggest = max(book.values(), default=0)
    cells = []
    for i, value in enumerate(VALUE_TIERS):
        for j, risk in enumerate(RISK_TIERS):
            n = book.get((value, risk), 0)
            strength = n / biggest if biggest else 0.0
            cells.append(
                {
                    "x": left + j * (cell_w + gap),
                    "y": top + i * (cell_h + gap),
                    "w": cell_w,
                    "h": cell_h,
                    "fill": RISK_COLOURS[risk] if n else "#eef1f4",
                    "opacity": f"{0.12 + 0.88 * strength:.2f}" if n else "1",
                    "text_fill": "#ffffff" if strength > 0.55 else "#1d2733",
                    "count": f"{n:,}",
                    "title": f"{value}, {risk} risk: {n:,} customers",
                }
            )
    width = left + 3 * cell_w + 2 * gap + 2
    height = top + 3 * cell_h + 2 * gap + 2
    return {
        "width": width,
        "height": height,
        "cells": cells,
        "rows": [
            {"label": v, "y": top + i * (cell_h + gap) + cell_h / 2 + 5}
            for i, v in enumerate(VALUE_TIERS)
        ],
        "columns": [
            {"label": f"{r} risk", "x": left + j * (cell_w + gap) + cell_w / 2}
            for j, r in enumerate(RISK_TIERS)
        ],
        "cell_w": cell_w,
        "cell_h": cell_h,
        "total": sum(book.values()),
    }
