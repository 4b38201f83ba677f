"""What a plan import changes (``PlanDiff``), and the Chinese labels it is shown with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duban.institutions import DEFAULT_CODE
from duban.vocabulary import Period, Schedule

SCHEDULE_LABELS: dict[str, str] = {Schedule.ONCE: "一次性", Schedule.RECURRING: "周期性", Schedule.ONGOING: "长期"}
FIELD_LABELS = {
    "title": "具体任务",
    "statement": "任务书",
    "done_criteria": "完成标志",
    "owner": "责任人",
    "lead_department": "牵头单位",
    "supervisor": "分管校领导",
    "partners": "配合单位",
    "deadline_text": "完成时限",
    "project": "所属项目",
    "schedule": "任务类型",
    "period": "反馈周期",
    "period_month": "每年月份",
    "policy": "督办规则",
    "ends_on": "截止日期",
}
PERIOD_LABELS: dict[str, str] = {
    Period.WEEK: "每周",
    Period.MONTH: "每月",
    Period.QUARTER: "每季度",
    Period.SEMESTER: "每学期",
    Period.YEAR: "每年",
}

CONFLICTS_TITLE = "与系统中已有决定冲突的变更"
ACCEPT_HINT = (
    "如确认以表格为准，请重新导入并加上 --accept 任务编号（可重复，或用逗号分隔多个编号），"
    "或加上 --accept-sheet 全部以表格为准；确认后原决定记入操作记录。"
)


@dataclass
class TaskChange:
    code: str
    title: str
    details: list[str] = field(default_factory=list)


@dataclass
class PlanDiff:
    """What an import changes; ``render`` prints it in Chinese, ``to_dict`` for JSON."""

    plan_code: str
    plan_name: str
    institution: str = ""  # the institution's code (duban.institutions)
    institution_name: str = ""
    plan_created: bool = False
    plan_details: list[str] = field(default_factory=list)
    added: list[TaskChange] = field(default_factory=list)
    changed: list[TaskChange] = field(default_factory=list)
    archived: list[TaskChange] = field(default_factory=list)
    restored: list[TaskChange] = field(default_factory=list)
    unchanged: int = 0
    people_added: list[str] = field(default_factory=list)
    people_changed: list[str] = field(default_factory=list)
    people_deactivated: list[str] = field(default_factory=list)
    departments_added: list[str] = field(default_factory=list)
    departments_changed: list[str] = field(default_factory=list)
    groups_added: list[str] = field(default_factory=list)
    groups_archived: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # changes the sheet asks for against a decision taken in duban (an approved extension, a done
    # or submitted step, a step with evidence): held back unless the office accepted them
    conflicts: list[TaskChange] = field(default_factory=list)
    # conflicts the office accepted (--accept CODE / --accept-sheet): applied, the sheet won
    accepted: list[TaskChange] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.plan_created
            or self.plan_details
            or self.added
            or self.changed
            or self.archived
            or self.restored
            or self.people_added
            or self.people_changed
            or self.people_deactivated
            or self.departments_added
            or self.departments_changed
            or self.groups_added
            or self.groups_archived
        )

    def to_dict(self) -> dict[str, Any]:
        def tc(items: list[TaskChange]) -> list[dict[str, Any]]:
            return [{"code": c.code, "title": c.title, "details": c.details} for c in items]

        return {
            "plan": self.plan_code,
            "institution": self.institution,
            "plan_created": self.plan_created,
            "plan_details": self.plan_details,
            "tasks": {
                "added": tc(self.added),
                "changed": tc(self.changed),
                "archived": tc(self.archived),
                "restored": tc(self.restored),
                "unchanged": self.unchanged,
            },
            "people": {
                "added": self.people_added,
                "changed": self.people_changed,
                "deactivated": self.people_deactivated,
            },
            "departments": {"added": self.departments_added, "changed": self.departments_changed},
            "groups": {"added": self.groups_added, "archived": self.groups_archived},
            "conflicts": {"not_applied": tc(self.conflicts), "accepted": tc(self.accepted)},
            "warnings": self.warnings,
        }

    def render(self, *, limit: int = 50) -> str:
        lines: list[str] = []
        head = "新建方案" if self.plan_created else "更新方案"
        # a one-school installation's own institution ("default") goes without saying
        of = f"（单位：{self.institution_name}）" if self.institution not in ("", DEFAULT_CODE) else ""
        lines.append(f"{head}「{self.plan_name}」（{self.plan_code}）{of}")
        lines += [f"  方案设置：{d}" for d in self.plan_details]

        def block(title: str, items: list[TaskChange], note: str = "") -> None:
            if not items:
                return
            lines.append(f"{title} {len(items)} 项{note}：")
            for c in items[:limit]:
                lines.append(f"  {c.code} {c.title}")
                lines.extend(f"      {d}" for d in c.details)
            if len(items) > limit:
                lines.append(f"  …… 另有 {len(items) - limit} 项未列出")

        block("新增任务", self.added)
        block("变更任务", self.changed)
        block("归档任务（已从清单中删除，历史记录保留）", self.archived)
        block("恢复任务（重新出现在清单中）", self.restored)
        block(CONFLICTS_TITLE, self.conflicts, "（未应用，保留系统中的决定）")
        if self.conflicts:
            lines.append(f"  {ACCEPT_HINT}")
        block(CONFLICTS_TITLE, self.accepted, "（已确认以表格为准并应用）")

        def names(title: str, items: list[str]) -> None:
            if not items:
                return
            if self.plan_created or len(items) > limit:
                lines.append(f"{title} {len(items)}：" + "、".join(items[:8]) + ("……" if len(items) > 8 else ""))
            else:
                lines.append(f"{title} {len(items)}：" + "、".join(items))

        names("新增体系/项目", self.groups_added)
        names("归档体系/项目", self.groups_archived)
        names("新增部门", self.departments_added)
        names("部门信息变更", self.departments_changed)
        names("新增人员", self.people_added)
        names("人员信息变更", self.people_changed)
        names("不再出现在人员表中（保留历史，不再接收提醒）", self.people_deactivated)
        if not self.has_changes and self.conflicts:
            lines.append("除上述冲突外，与库中现有内容相同，没有需要更新的内容。")
        elif not self.has_changes:
            lines.append("与库中现有内容相同，没有需要更新的内容。")
        else:
            lines.append(f"未变更任务 {self.unchanged} 项。")
        lines += [f"提示：{w}" for w in self.warnings]
        return "\n".join(lines)


def show(value: Any) -> str:
    """A value as the diff prints it: （空） for nothing, 是/否, lists joined with 、."""
    if value is None or value == "" or value == ():
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(map(str, value)) or "（空）"
    if isinstance(value, dict):
        return "；".join(f"{k}={show(v)}" for k, v in sorted(value.items())) or "（默认）"
    return str(value)
