"""考核: each lead department's score from its record (formula in docs/rollup.md), its rank and the
change of rank since the last issued 通报, and the rates every group of the roll-up carries.

A department with nothing due yet (no due milestone) has no score and no rank: it is listed after
the ranked ones as 暂无到期事项 (a department that has not been tested is not a leader)."""

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


NOTHING_DUE = "暂无到期事项"  # shown instead of a score for a department with nothing due yet
NEW_ENTRY = "新上榜"  # ranked now, not ranked in the bulletin compared with
SAME_RANK = "—"


def rank_change(previous: int | None, now: int | None, *, compared: bool) -> str:
    """A rank's change since the bulletin compared with: ``↑2`` (up two places), ``↓1``, ``—``
    (same place), ``新上榜`` (not ranked then); empty when not ranked now or nothing to compare with."""
    if now is None or not compared:
        return ""
    if previous is None:
        return NEW_ENTRY
    if previous > now:
        return f"↑{previous - now}"
    if previous < now:
        return f"↓{now - previous}"
    return SAME_RANK


def assessment(live: pd.DataFrame, plans: pd.DataFrame, previous: dict[str, dict[str, int]] | None = None) -> pd.DataFrame:
    """考核: one row per (plan, lead department); formula in docs/rollup.md.

    ``previous``: per plan code, each department's rank in the bulletin compared with (a plan
    without one gets no ``change``).  Ranked departments come first (score, then name); those
    with nothing due follow by name, with no score (NaN) and no rank (None)."""
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
        "change",
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
    a["unranked"] = a["due_milestones"] == 0
    for c in ("s_on_time", "s_overdue", "s_escalations", "s_returns", "p_on_time", "p_overdue", "p_escalations", "p_returns", "score"):
        a[c] = a[c].where(~a["unranked"])
    a = a.sort_values(["plan", "unranked", "score", "department"], ascending=[True, True, False, True], kind="stable").reset_index(
        drop=True
    )
    ranks = a.groupby("plan")["score"].rank(method="min", ascending=False)
    a["rank"] = pd.Series([None if r != r else int(r) for r in ranks.tolist()], index=a.index, dtype=object)
    previous = previous or {}
    a["change"] = [
        rank_change(previous.get(p, {}).get(d), r, compared=p in previous)
        for p, d, r in zip(a["plan"].tolist(), a["department"].tolist(), a["rank"].tolist(), strict=True)
    ]
    return a[out_cols]


def score_frame(g: pd.DataFrame, policy: AssessmentPolicy) -> pd.DataFrame:
    """Add the component scores and the total to a frame with the record columns (docs/rollup.md).

    Each component is a rate from 0 to 1 (``s_*``), its points are rate × weight (``p_*``), and the
    score is the points' sum over the weights' sum × 100.  (:func:`assessment` leaves a department
    with nothing due unscored; here nothing due counts as full on-time marks.)
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


def _n(x: float) -> str:
    """A setting as an office writes it: 50, 0.5, 12.5 (no trailing zeros)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def explanation(policy: AssessmentPolicy) -> list[str]:
    """How the score is made, in short Chinese lines (report, workbook, dashboard, 通报)."""
    w = policy.weights
    return [
        f"按期完成 {_n(w.on_time)} 分：按期完成节点 ÷ 应完成节点 × {_n(w.on_time)}；批准延期的，按延期后的完成时间计。",
        f"逾期 {_n(w.overdue)} 分：应完成节点平均逾期 {_n(policy.overdue_days_limit)} 个工作日及以上得 0 分，"
        f"不逾期得满分，其间按比例计分（已完成的按提交日计，未完成的计至统计日）。",
        f"督办 {_n(w.escalations)} 分：平均每项任务被督办 {_n(policy.escalations_limit)} 次及以上得 0 分，未被督办得满分，其间按比例计分。",
        f"退回 {_n(w.returns)} 分：办结申请被退回的比例达到 {_n(policy.returns_limit * 100)}% 及以上得 0 分，"
        "没有退回得满分，其间按比例计分。",
        f"考核得分 = 四项得分之和 ÷ 权重合计（{_n(w.total)}）× 100，保留一位小数；得分相同的名次并列。"
        f"尚无应完成节点的单位暂不计分、不排名，列于最后并注明“{NOTHING_DUE}”。",
    ]
