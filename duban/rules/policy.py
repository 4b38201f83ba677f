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
    approval_remind_after: int = Field(
        3, ge=1, description="提交办结或延期申请后几个工作日仍未审核，提醒领导小组办公室（此后按逾期提醒的间隔和次数再提醒）"
    )
    announce_grace: int = Field(5, ge=0, description="下达时已逾期或即将到期的事项，下达后给责任人几个工作日再开始逾期督办")
    renotice_every: int = Field(10, ge=1, description="督办到最后一级（领导小组办公室）后，每隔几个工作日再次督办，直至办结")
    send_hours: str = Field("", description="通知发送时段（当地时间，工作日），如 08:00-18:00；always 为全天不限；缺省按 DUBAN_SEND_HOURS")
    office_batch_times: tuple[str, ...] = Field(
        ("10:00", "15:00"), description='待审核通知汇总发给领导小组办公室的时刻（当地时间），如 ["10:00", "15:00"]'
    )

    @field_validator("office_batch_times", mode="before")
    @classmethod
    def _batch_times(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from duban.rules.batching import parse_batch_times

        return tuple(t.strftime("%H:%M") for t in parse_batch_times(v))  # BatchTimesError is a ValueError

    @field_validator("send_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if v:
            from duban.rules.quiet import parse_send_hours

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

# keys of a plan's policy that are not deadline rules (validated by their own models)
NON_DEADLINE_KEYS = ("assessment",)


def effective_policy(plan_policy: dict[str, Any] | None, task_policy: dict[str, Any] | None = None) -> DeadlinePolicy:
    """Defaults, then the plan's overrides, then the task's (the plan's ``assessment`` is not a
    deadline rule: see :func:`assessment_policy`)."""
    if not plan_policy and not task_policy:
        return DEFAULT_POLICY
    plan_policy = {k: v for k, v in (plan_policy or {}).items() if k not in NON_DEADLINE_KEYS}
    if not plan_policy and not task_policy:
        return DEFAULT_POLICY
    merged = {**DEFAULT_POLICY.model_dump(), **plan_policy, **(task_policy or {})}
    return DeadlinePolicy.model_validate(merged)


class AssessmentWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_time: float = Field(50, ge=0, description="按期完成率的权重（分）")
    overdue: float = Field(20, ge=0, description="逾期天数的权重（分）")
    escalations: float = Field(15, ge=0, description="被督办次数的权重（分）")
    returns: float = Field(15, ge=0, description="办结被退回的权重（分）")

    @property
    def total(self) -> float:
        return self.on_time + self.overdue + self.escalations + self.returns


class AssessmentPolicy(BaseModel):
    """考核: how a department's score (0–100) is made from its record (docs/rollup.md).

    A plan sets it under ``policy: assessment:`` (partial: the rest keeps the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: AssessmentWeights = Field(default_factory=AssessmentWeights, description="各项权重（分），合计通常为 100")
    overdue_days_limit: float = Field(10, gt=0, description="平均每个应完成节点逾期多少个工作日时，逾期一项得 0 分")
    escalations_limit: float = Field(1, gt=0, description="平均每项任务被督办多少次时，督办一项得 0 分")
    returns_limit: float = Field(0.5, gt=0, description="办结申请被退回的比例达到多少时，退回一项得 0 分")

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, v: AssessmentWeights) -> AssessmentWeights:
        if v.total <= 0:
            raise ValueError("考核权重之和须大于 0")
        return v


DEFAULT_ASSESSMENT = AssessmentPolicy()


def assessment_policy(plan_policy: dict[str, Any] | None) -> AssessmentPolicy:
    """The plan's assessment settings over the defaults."""
    raw = (plan_policy or {}).get("assessment")
    if not raw:
        return DEFAULT_ASSESSMENT
    return AssessmentPolicy.model_validate(raw)
