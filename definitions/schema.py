"""The plan definition schema.

Two layers:

* ``PlanFile`` and its parts are what an office writes: the YAML schema (documented in
  ``docs/plan-format.md``, exported as ``definitions/plan.schema.json``).  The spreadsheet loader
  produces the same objects from rows, so both formats share one validation path.
* ``PlanDefinition`` is the resolved plan: names checked against the people and departments,
  deadlines parsed, roadmap steps turned into dated milestones.  ``definitions.resolve`` builds it
  and reports every problem at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from duban import vocabulary
from duban.vocabulary import BulletinEvery, Schedule

DeadlineValue = str | dt.date | dt.datetime | int | float


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


class MilestoneIn(_In):
    """One step of the 路线图 with its date from the 时间表."""

    due: DeadlineValue = Field(description="完成时间，如 2026-12-31、2026年12月底前、2027年上半年")
    title: str = Field("", description="这一步要完成的内容")


class TaskIn(_In):
    """One concrete task (具体任务)."""

    code: str = Field(description="任务编号（序号），在方案内唯一，再次导入时据此匹配")
    title: str = Field(description="具体任务")
    statement: str = Field("", description="任务书：做什么、怎么做")
    done_criteria: str = Field("", description="完成标志")
    owner: str | None = Field(None, description="责任人（人员表中的姓名）；缺省为牵头单位负责人")
    lead_department: str | None = Field(None, description="牵头单位（部门表中的名称）")
    partners: list[str] = Field(default_factory=list, description="配合单位")
    supervisor: str | None = Field(None, description="分管校领导；缺省为牵头单位的分管校领导")
    deadline: DeadlineValue | None = Field(None, description="完成时限：日期、月份、上/下半年、每学期、每月、每季度、每年X月、长期坚持")
    roadmap: list[MilestoneIn] | str | None = Field(
        None, description="路线图：若干带日期的步骤，或一段文字（“2026年12月底前 制定方案；2027年6月 中期检查”）"
    )
    report_every: str | None = Field(None, description="长期任务的进展反馈周期（每月、每季度、每学期、每年）；缺省按方案设置")
    until: DeadlineValue | None = Field(
        None, description="截止日期：周期性或长期任务到哪一天为止（如 2027-12-31）；缺省为方案的实施截止日期。有明确完成时限的任务不填"
    )
    policy: dict[str, Any] = Field(default_factory=dict, description="本任务的督办规则（覆盖方案设置，字段同 plan.policy）")


class ProjectIn(_In):
    """A key project (重点项目)."""

    code: str | None = Field(None, description="项目编号，可省略")
    name: str
    tasks: list[TaskIn] = Field(default_factory=list)


class SystemIn(_In):
    """An 育人 system (育人体系)."""

    code: str | None = Field(None, description="体系编号，可省略")
    name: str
    projects: list[ProjectIn] = Field(default_factory=list)


class PersonIn(_In):
    name: str = Field(description="姓名（方案内唯一，任务中的责任人以此引用）")
    department: str | None = None
    title: str | None = Field(None, description="职务")
    email: str | None = None
    mobile: str | None = None
    notify: list[str] = Field(
        default_factory=list,
        description="通知地址，按优先顺序（apprise URL：mailto://、wecombot://、dingtalk://、feishu:// …；"
        "email 表示经单位邮件服务器发到本人邮箱；前加 always= 表示该渠道每次都发）",
    )
    manager: str | None = Field(None, description="直接上级（人员表中的姓名）")
    staff_no: str | None = Field(None, description="工号（统一身份认证账号）：登录时据此找到本人")
    wecom_userid: str | None = Field(None, description="企业微信账号（成员 UserID）：配置了企业微信应用时，督办以应用消息发给本人")
    dingtalk_userid: str | None = Field(None, description="钉钉 userid：配置了钉钉应用时，督办以工作通知发给本人")
    feishu_open_id: str | None = Field(None, description="飞书 open_id（ou_ 开头）：配置了飞书应用时，督办以应用消息发给本人")


class DepartmentIn(_In):
    name: str
    head: str | None = Field(None, description="部门负责人（人员表中的姓名）")
    supervisor: str | None = Field(None, description="分管校领导（人员表中的姓名）")
    notify: list[str] = Field(
        default_factory=list, description="部门群通知地址（群机器人的 apprise URL）：本部门牵头任务的督办同时发到群里"
    )


class PlanChannelsIn(_In):
    """Group channels of the plan (群机器人等 apprise URL)."""

    leading_group: list[str] = Field(default_factory=list, description="领导小组群：接收督办通报")
    office: list[str] = Field(default_factory=list, description="领导小组办公室群：接收督办通报")


class OfficeMemberIn(_In):
    """A member of the 领导小组办公室 with a line (督办条线): the 督办 of these systems and departments is theirs."""

    name: str = Field(description="姓名（人员表中的姓名）")
    systems: list[str] = Field(default_factory=list, description="负责督办的育人体系（体系名称）")
    departments: list[str] = Field(default_factory=list, description="负责督办的牵头单位（部门表中的名称）")
    lines: list[str] = Field(default_factory=list, description="育人体系或部门名称，不必区分（表格中“督办条线”一列即按此读取）")


# 督办通报 (plan.bulletin_every): the words an office writes, and the label the diff and export show
BULLETIN_EVERY_WORDS: dict[str, BulletinEvery] = {
    "每周": BulletinEvery.WEEK,
    "周": BulletinEvery.WEEK,
    "周通报": BulletinEvery.WEEK,
    "week": BulletinEvery.WEEK,
    "每月": BulletinEvery.MONTH,
    "月": BulletinEvery.MONTH,
    "月通报": BulletinEvery.MONTH,
    "month": BulletinEvery.MONTH,
    "每周和每月": BulletinEvery.BOTH,
    "每周、每月": BulletinEvery.BOTH,
    "周通报和月通报": BulletinEvery.BOTH,
    "both": BulletinEvery.BOTH,
}
BULLETIN_EVERY_LABELS: dict[str, str] = {BulletinEvery.WEEK: "每周", BulletinEvery.MONTH: "每月", BulletinEvery.BOTH: "每周和每月"}


class PlanIn(_In):
    code: str = Field(description="方案编号，唯一；再次导入同一编号即更新该方案")
    name: str = Field(description="方案名称")
    organization: str = Field("", description="单位名称")
    approval_required: bool = Field(True, description="提交办结后是否需要领导小组办公室审核")
    report_every: str = Field("每学期", description="长期任务缺省的进展反馈周期")
    policy: dict[str, Any] = Field(
        default_factory=dict,
        description="督办规则（工作日）：remind_before、overdue_every、overdue_cap、escalate_head_after、"
        "escalate_supervisor_after、escalate_office_after、ack_within、ack_escalate_after、report_remind_before、report_grace、"
        'office_batch_times（待审核通知汇总发给领导小组办公室的时刻，如 ["10:00", "15:00"]）',
    )
    leading_group: list[str] = Field(default_factory=list, description="领导小组成员")
    office: list[str | OfficeMemberIn] = Field(
        default_factory=list,
        description="领导小组办公室（督办员）：姓名，或带督办条线的 {name, systems, departments}"
        "（逾期督办到办公室时只发给负责该条线的督办员）",
    )
    channels: PlanChannelsIn = Field(default_factory=PlanChannelsIn, description="领导小组、领导小组办公室的群通知地址")
    ends_on: DeadlineValue | None = Field(
        None, description="实施截止日期（改革实施期限的最后一天，如 2028-07-31）：周期性、长期任务到此为止；缺省为路线图中最晚的日期"
    )
    announce_on_import: bool = Field(
        False, description="下达方式：true 为导入即下达（导入后立即向责任人发出任务书）；缺省 false，由 duban announce 下达"
    )
    bulletin_every: str = Field("每周", description="督办通报：每周、每月或每周和每月")


class PlanFile(_In):
    """A whole plan as written in YAML."""

    version: Literal[1] = 1
    plan: PlanIn
    departments: list[DepartmentIn] = Field(default_factory=list)
    people: list[PersonIn] = Field(default_factory=list)
    systems: list[SystemIn] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Resolved definitions (what the store receives)

Period = vocabulary.Period


@dataclass(frozen=True)
class Deadline:
    """A parsed 完成时限 / 路线图 date.

    ``kind`` is ``date`` (a due date), ``recurring`` (due every ``period``; ``month`` pins the
    month for 每年X月) or ``ongoing`` (长期坚持: no final date, periodic progress reports).
    """

    kind: Literal["date", "recurring", "ongoing"]
    due: dt.date | None = None
    period: Period | None = None
    month: int | None = None
    text: str = ""

    @property
    def due_date(self) -> dt.date:
        """The due date of a ``date`` deadline (the parser sets ``due`` for every one)."""
        if self.due is None:
            raise ValueError(f"deadline {self.text!r} ({self.kind}) has no due date")
        return self.due


@dataclass(frozen=True)
class MilestoneDef:
    seq: int
    title: str
    due: dt.date
    due_text: str
    is_final: bool


@dataclass(frozen=True)
class TaskDef:
    code: str
    system: str
    project: str
    title: str
    statement: str
    done_criteria: str
    owner: str
    lead_department: str | None
    partners: tuple[str, ...]
    supervisor: str | None
    schedule: Schedule
    period: Period | None
    period_month: int | None
    deadline_text: str
    milestones: tuple[MilestoneDef, ...]
    position: int
    policy: dict[str, Any] = field(default_factory=dict)
    ends_on: dt.date | None = None  # a recurring or ongoing task's last day (None: the plan's end)


@dataclass(frozen=True)
class PersonDef:
    name: str
    department: str | None
    title: str | None
    email: str | None
    mobile: str | None
    notify: tuple[str, ...]
    manager: str | None
    staff_no: str | None = None
    wecom_userid: str | None = None
    dingtalk_userid: str | None = None
    feishu_open_id: str | None = None
    # where each of the person's accounts is written (column -> "file · sheet · row · column"), for
    # the import's warnings about the store (duban.plans.sync)
    located: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class DepartmentDef:
    name: str
    head: str | None
    supervisor: str | None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupDef:
    """A system or project: name, code and position."""

    code: str
    name: str
    position: int
    system: str | None = None  # for a project, the name of its system


@dataclass(frozen=True)
class PlanDefinition:
    code: str
    name: str
    organization: str
    approval_required: bool
    report_every: Period
    leading_group: tuple[str, ...]
    office: tuple[str, ...]
    departments: tuple[DepartmentDef, ...]
    people: tuple[PersonDef, ...]
    systems: tuple[GroupDef, ...]
    projects: tuple[GroupDef, ...]
    tasks: tuple[TaskDef, ...]
    policy: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, list[str]] = field(default_factory=dict)  # {"leading_group": [...], "office": [...]}
    warnings: tuple[str, ...] = field(default=(), compare=False)
    ends_on: dt.date | None = None  # the end of the reform period (None: the latest roadmap date)
    announce_on_import: bool = False  # announce (任务下达) what an import adds at once
    bulletin_every: str = "week"  # BulletinEvery: week | month | both
    # each office member's line (督办条线), by name: {"systems": [...], "departments": [...]}
    office_scopes: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def json_schema() -> dict:
    """The JSON schema of the YAML plan format (shipped as ``definitions/plan.schema.json``)."""
    schema = PlanFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "duban plan"
    schema["description"] = "督办方案文件（YAML）。说明见 docs/plan-format.md。"
    return schema


if __name__ == "__main__":  # python -m definitions.schema > definitions/plan.schema.json
    import json

    print(json.dumps(json_schema(), ensure_ascii=False, indent=2))
