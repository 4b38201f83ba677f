"""考核: each lead department's score from its record (formula in docs/rollup.md), and the
rates every group of the roll-up carries."""

from __future__ import annotations

import pandas as pd

from duban.rules.policy import AssessmentPolicy, assessment_policy


def plan_assessment_policies(plans: pd.DataFrame) -> dict[str, AssessmentPolicy]:
    """Each plan's (code's) assessment settings, from the ``plan`` and ``policy`` columns of the plans frame."""
    return {plan: assessment_policy(policy) for plan, policy in zip(plans["plan"].tolist(), plans["policy"].tolist(), strict=True)}


def ratio(num, den):
    """num / den, NaN where den is 0 (frames) or None (scalars)."""
    if isinstance(den, pd.Series):
        return (num / den.where(den > 0)).astype("float64")
    return (num / den) if den else None


def rates(g) -> None:
    g["completion_rate"] = ratio(g["done_milestones"], g["milestones"])
    g["on_time_rate"] = ratio(g["on_time_milestones"], g["due_milestones"])
    g["on_time_baseline_rate"] = ratio(g["on_time_baseline_milestones"], g["due_milestones"])


def assessment(live: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """考核: one row per (plan, lead department); formula in docs/rollup.md."""
    cols = ["tasks", "due_milestones", "on_time_milestones", "late_days", "escalations", "completion_requests", "returns"]
    out_cols = [
        "plan",
        "department",
        "tasks",
        "due_milestones",
        "on_time_milestones",
        "on_time_rate",
        "late_days",
        "avg_late_days",
        "escalations",
        "escalations_per_task",
        "completion_requests",
        "returns",
        "return_rate",
        "s_on_time",
        "s_overdue",
        "s_escalations",
        "s_returns",
        "p_on_time",
        "p_overdue",
        "p_escalations",
        "p_returns",
        "score",
        "rank",
    ]
    if live.empty:
        return pd.DataFrame(columns=out_cols)
    g = live.groupby(["plan", "department"], sort=False)[cols].sum().reset_index()
    policies = plan_assessment_policies(plans)
    if len({p.model_dump_json() for p in policies.values()}) <= 1:
        a = score_frame(g, next(iter(policies.values())))
    else:  # plans with their own settings: each row scored with its plan's (vectorised, not per plan)
        per = {name: g["plan"].map({code: value(p) for code, p in policies.items()}) for name, value in _PARAMS.items()}
        a = _score(g, **per)
    a = a.sort_values(["plan", "score", "department"], ascending=[True, False, True], kind="stable").reset_index(drop=True)
    a["rank"] = a.groupby("plan")["score"].rank(method="min", ascending=False).astype("int64")
    return a[out_cols]


def score_frame(g: pd.DataFrame, policy: AssessmentPolicy) -> pd.DataFrame:
    """Add the component scores and the total to a frame with the record columns (docs/rollup.md).

    Each component is a rate from 0 to 1 (``s_*``), its points are rate × weight (``p_*``), and the
    score is the points' sum over the weights' sum × 100.  Nothing due yet counts as full marks.
    """
    return _score(g, **{name: value(policy) for name, value in _PARAMS.items()})


_PARAMS = {
    "w_on_time": lambda p: p.weights.on_time,
    "w_overdue": lambda p: p.weights.overdue,
    "w_escalations": lambda p: p.weights.escalations,
    "w_returns": lambda p: p.weights.returns,
    "overdue_limit": lambda p: p.overdue_days_limit,
    "escalations_limit": lambda p: p.escalations_limit,
    "returns_limit": lambda p: p.returns_limit,
}


def _score(
    g: pd.DataFrame, *, w_on_time, w_overdue, w_escalations, w_returns, overdue_limit, escalations_limit, returns_limit
) -> pd.DataFrame:
    """The arithmetic of :func:`score_frame`; each parameter a number or a per-row Series."""
    due = g["due_milestones"]
    g["on_time_rate"] = ratio(g["on_time_milestones"], due)
    g["avg_late_days"] = (g["late_days"] / due.where(due > 0)).fillna(0.0)
    g["escalations_per_task"] = (g["escalations"] / g["tasks"].where(g["tasks"] > 0)).fillna(0.0)
    g["return_rate"] = ratio(g["returns"], g["completion_requests"])
    g["s_on_time"] = g["on_time_rate"].fillna(1.0)
    g["s_overdue"] = (1 - g["avg_late_days"] / overdue_limit).clip(lower=0.0, upper=1.0)
    g["s_escalations"] = (1 - g["escalations_per_task"] / escalations_limit).clip(lower=0.0, upper=1.0)
    g["s_returns"] = (1 - g["return_rate"].fillna(0.0) / returns_limit).clip(lower=0.0, upper=1.0)
    g["p_on_time"] = g["s_on_time"] * w_on_time
    g["p_overdue"] = g["s_overdue"] * w_overdue
    g["p_escalations"] = g["s_escalations"] * w_escalations
    g["p_returns"] = g["s_returns"] * w_returns
    total = g["p_on_time"] + g["p_overdue"] + g["p_escalations"] + g["p_returns"]
    g["score"] = (total / (w_on_time + w_overdue + w_escalations + w_returns) * 100).round(1)
    for c in ("p_on_time", "p_overdue", "p_escalations", "p_returns"):
        g[c] = g[c].round(1)
    return g
