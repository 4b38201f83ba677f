"""考核 ranking (duban/rollup/assessment.py) from literal department records: departments with
nothing due are not ranked, ties share a rank, the change since the last 通报, the explanation."""

from __future__ import annotations

import pandas as pd
import pytest

from duban.rollup.assessment import assessment, explanation, rank_change
from duban.rules.policy import AssessmentPolicy

RECORD = [
    "plan",
    "department",
    "tasks",
    "due_milestones",
    "on_time_milestones",
    "late_days",
    "escalations",
    "completion_requests",
    "returns",
]
# one plan, six departments: four have something due, two have nothing due yet
ROWS = [
    ("p", "教务处", 3, 4, 1, 19, 2, 3, 1),  # 12.5 + 10.5 + 5.0 + 5.0 = 33.0
    ("p", "宣传部", 2, 0, 0, 0, 0, 0, 0),  # nothing due: not ranked
    ("p", "学工部", 2, 2, 2, 0, 0, 2, 0),  # everything on time: 100.0
    ("p", "团委", 1, 0, 0, 0, 1, 0, 0),  # nothing due (an escalation for 签收 does not rank it)
    ("p", "科研处", 2, 2, 1, 2, 0, 1, 0),  # 25 + 18 + 15 + 15 = 73.0
    ("p", "人事处", 2, 2, 1, 2, 0, 0, 0),  # the same record: 73.0, the same rank
]
PLANS = pd.DataFrame({"plan": ["p"], "policy": [None]})


def ranked(previous=None) -> list[tuple]:
    a = assessment(pd.DataFrame(ROWS, columns=RECORD), PLANS, previous)
    return [(r.department, None if r.score != r.score else r.score, r.rank, r.change) for r in a.itertuples()]


def test_nothing_due_is_not_ranked_and_comes_last():
    assert ranked() == [
        ("学工部", 100.0, 1, ""),
        ("人事处", 73.0, 2, ""),
        ("科研处", 73.0, 2, ""),
        ("教务处", 33.0, 4, ""),
        ("团委", None, None, ""),
        ("宣传部", None, None, ""),
    ]


def test_change_since_the_last_bulletin():
    # the last 通报 ranked 教务处 1st, 学工部 2nd, 科研处 3rd, 宣传部 4th (it had something due then)
    previous = {"p": {"教务处": 1, "学工部": 2, "科研处": 3, "宣传部": 4}}
    assert ranked(previous) == [
        ("学工部", 100.0, 1, "↑1"),
        ("人事处", 73.0, 2, "新上榜"),
        ("科研处", 73.0, 2, "↑1"),
        ("教务处", 33.0, 4, "↓3"),
        ("团委", None, None, ""),
        ("宣传部", None, None, ""),
    ]


@pytest.mark.parametrize(
    ("before", "now", "compared", "text"),
    [(3, 1, True, "↑2"), (1, 2, True, "↓1"), (2, 2, True, "—"), (None, 5, True, "新上榜"), (2, None, True, ""), (None, 1, False, "")],
)
def test_rank_change(before, now, compared, text):
    assert rank_change(before, now, compared=compared) == text


def test_explanation_follows_the_plan_settings():
    assert explanation(AssessmentPolicy()) == [
        "按期完成 50 分：按期完成节点 ÷ 应完成节点 × 50；批准延期的，按延期后的完成时间计。",
        "逾期 20 分：应完成节点平均逾期 10 个工作日及以上得 0 分，不逾期得满分，其间按比例计分（已完成的按提交日计，未完成的计至统计日）。",
        "督办 15 分：平均每项任务被督办 1 次及以上得 0 分，未被督办得满分，其间按比例计分。",
        "退回 15 分：办结申请被退回的比例达到 50% 及以上得 0 分，没有退回得满分，其间按比例计分。",
        "考核得分 = 四项得分之和 ÷ 权重合计（100）× 100，保留一位小数；得分相同的名次并列。尚无应完成节点的单位暂不计分、不排名，列于最后并注明“暂无到期事项”。",
    ]
    own = AssessmentPolicy.model_validate({"weights": {"on_time": 40, "overdue": 30}, "overdue_days_limit": 15, "returns_limit": 0.25})
    lines = explanation(own)
    assert lines[0].startswith("按期完成 40 分：") and "× 40" in lines[0]
    assert lines[1].startswith("逾期 30 分：应完成节点平均逾期 15 个工作日")
    assert "达到 25% 及以上" in lines[3] and "权重合计（100）" in lines[4]
    assert all("docs/" not in line and ".md" not in line for line in lines)
