"""The deadline policy: when to remind, nag and escalate (working days), per plan and per task.

Defaults follow a 督办 office's practice (DESIGN.md, "Default ladder"); a plan stores overrides in
``plans.policy`` and a task in ``tasks.policy`` (same keys, partial).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DeadlinePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    remind_before: tuple[int, ...] = Field((7, 3, 1, 0), description="到期前第几个工作日提醒责任人")
    overdue_every: int = Field(3, ge=1, description="逾期后每隔几个工作日再提醒责任人")
    overdue_cap: int = Field(5, ge=1, description="逾期提醒责任人最多几次")
    escalate_head_after: int = Field(3, ge=1, description="逾期几个工作日后督办部门负责人")
    escalate_supervisor_after: int = Field(7, ge=1, description="逾期几个工作日后督办分管校领导")
    escalate_office_after: int = Field(15, ge=1, description="逾期几个工作日后报领导小组办公室（列入通报）")
    ack_within: int = Field(3, ge=1, description="下达后几个工作日内须签收，否则提醒")
    ack_escalate_after: int = Field(5, ge=1, description="下达后几个工作日仍未签收则报部门负责人")
    report_remind_before: tuple[int, ...] = Field((3, 0), description="长期/周期任务每期反馈截止前第几个工作日提醒")
    report_grace: int = Field(3, ge=0, description="反馈截止后几个工作日仍未反馈即催报并按逾期督办")
    send_hours: str = Field("", description="通知发送时段（当地时间，工作日），如 08:00-18:00；always 为全天不限；缺省按 DUBAN_SEND_HOURS")

    @field_validator("send_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if v:
            from notifications.quiet import parse_send_hours

            parse_send_hours(v)  # SendHoursError is a ValueError: reported with the field name
        return v

    @field_validator("remind_before", "report_remind_before")
    @classmethod
    def _sorted_desc(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(x < 0 for x in v):
            raise ValueError("提醒天数不能为负数")
        return tuple(sorted(set(v), reverse=True))

    @property
    def window(self) -> int:
        """The 'due soon' window (yellow): the earliest reminder."""
        return max(self.remind_before, default=0)


DEFAULT_POLICY = DeadlinePolicy()


def effective_policy(plan_policy: dict[str, Any] | None, task_policy: dict[str, Any] | None = None) -> DeadlinePolicy:
    """Defaults, then the plan's overrides, then the task's."""
    if not plan_policy and not task_policy:
        return DEFAULT_POLICY
    merged = {**DEFAULT_POLICY.model_dump(), **(plan_policy or {}), **(task_policy or {})}
    return DeadlinePolicy.model_validate(merged)
