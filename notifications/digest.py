"""Build one digest message per recipient from the ledger items of a run (zh-CN, Jinja2).

Items are grouped the way a 督办 office reads them: overdue first, then what the recipient is
asked to supervise (督办), then what is due soon, then acknowledgements and reports to file.
Templates live in ``notifications/templates``; an institution may put its own copies in a
folder named by ``template_dir`` to override them without touching code.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from duban.vocabulary import REVIEW_MESSAGE_KINDS, LinkAction, MessageKind, RequestKind

TEMPLATES = Path(__file__).parent / "templates"
LEVELS = {1: "部门负责人督办", 2: "分管校领导督办", 3: "领导小组办公室督办（列入通报）"}
GROUPS = (
    ("overdue", "已逾期，请尽快办理"),
    ("inspection", "督查填报，请按时报送"),
    ("review", "待您审核，请及时处理"),
    ("escalation", "请督促落实"),
    ("due", "即将到期"),
    ("todo", "待签收、待反馈"),
    ("result", "审核结果"),
    ("relink", "您申请的新链接"),
)
# keyed by the stored kind (plain text; the keys are MessageKind members, equal to their values)
GROUP_OF: dict[str, str] = {
    MessageKind.OVERDUE: "overdue",
    MessageKind.REPORT_OVERDUE: "overdue",
    MessageKind.ESCALATION: "escalation",
    MessageKind.DUE: "due",
    MessageKind.REPORT_DUE: "todo",
    MessageKind.ACK: "todo",
    MessageKind.ASSIGNMENT: "todo",
    # from the web app (duban.actions): review requests to the office, decisions to the owner, fresh links
    MessageKind.APPROVAL: "review",
    MessageKind.APPROVAL_WAITING: "review",
    MessageKind.APPROVED: "result",
    MessageKind.RETURNED: "result",
    MessageKind.EXTENSION_DECIDED: "result",
    MessageKind.RELINK: "relink",
    # reviews (督查, duban.reviews): requests and reminders to owners, escalations, verdicts to the office, results
    MessageKind.REVIEW_REQUEST: "inspection",
    MessageKind.REVIEW_REMINDER: "inspection",
    MessageKind.REVIEW_OVERDUE: "inspection",
    MessageKind.REVIEW_ESCALATION: "escalation",
    MessageKind.REVIEW_VERDICTS: "review",
    MessageKind.REVIEW_FOLLOW_UP: "result",
    MessageKind.REVIEW_REPORT: "result",
    MessageKind.REVIEW_CANCELLED: "result",
}
# keyed by the stored action (plain text; the keys are LinkAction members, equal to their values)
RELINK_ACTIONS: dict[str, str] = {
    LinkAction.ACK: "签收",
    LinkAction.PROGRESS: "反馈进展",
    LinkAction.DONE: "提交办结",
    LinkAction.EXTEND: "申请延期",
    LinkAction.VIEW: "查看任务",
    LinkAction.REVIEW: "审核",
    LinkAction.QUEUE: "查看待审核事项",
    LinkAction.REVIEW_ANSWER: "填报督查情况",
    LinkAction.REVIEW_VERDICT: "督查评定",
    LinkAction.REVIEW_REPORT: "查看督查报告",
}


@dataclass
class Item:
    kind: str
    code: str
    title: str
    milestone: str
    line: str
    links: list[tuple[str, str]] = field(default_factory=list)
    sort_key: tuple = ()
    due: str | None = None  # ISO date
    days: int = 0  # working days left (>0) or late (<0)
    level: int = 0
    history: list[str] = field(default_factory=list)  # what was sent before about the same task (escalations)

    @property
    def when(self) -> str:
        """How close or late, in words ("还有 3 个工作日", "已逾期 5 个工作日", "今天到期")."""
        if self.due is None:
            return ""
        if self.days > 0:
            return f"还有 {self.days} 个工作日"
        return "今天到期" if self.days == 0 else f"已逾期 {-self.days} 个工作日"


# Kinds that are not in GROUPS (notices about the system itself, e.g. an unreachable person)
# are listed last under this title.
NOTICE_GROUP = ("notice", "系统提示，请处理")


def _days(n: int) -> str:
    return f"{n} 个工作日"


def describe(kind: str, level: int, due: dt.date | None, days: int, data: dict[str, Any]) -> str:
    """The one line that says what is asked and how late or close it is."""
    due_s = due.isoformat() if due else ""
    if kind == MessageKind.DUE:
        return f"完成时间 {due_s}，今天到期" if days == 0 else f"完成时间 {due_s}，还有 {_days(days)}"
    if kind == MessageKind.OVERDUE:
        return f"完成时间 {due_s}，已逾期 {_days(-days)}，请尽快办理或申请延期"
    if kind == MessageKind.ASSIGNMENT:
        return f"新下达任务，请于 {_days(data.get('ack_within', 3))}内签收"
    if kind == MessageKind.ACK:
        return f"该任务于 {data.get('assigned_on', '')} 下达给您，已 {_days(-days)}仍未签收，请及时签收"
    if kind == MessageKind.REPORT_DUE:
        period = f"{data.get('period_start', '')} 至 {data.get('period_end', '')}"
        return f"请于 {due_s} 前反馈本期（{period}）工作进展" + ("，今天截止" if days == 0 else "")
    if kind == MessageKind.REPORT_OVERDUE:
        period = f"{data.get('period_start', '')} 至 {data.get('period_end', '')}"
        return f"本期（{period}）工作进展尚未反馈，已超过截止日期 {due_s}，请尽快反馈"
    if kind in (MessageKind.APPROVAL, MessageKind.APPROVED, MessageKind.RETURNED, MessageKind.EXTENSION_DECIDED, MessageKind.RELINK):
        return _describe_review(kind, due_s, data)
    if kind == MessageKind.APPROVAL_WAITING:
        what = "延期申请" if data.get("request_kind") == RequestKind.EXTENSION else "办结申请"
        return (
            f"{what}已于 {data.get('submitted_on', '')} 提交，已等待审核 {_days(data.get('waited', -days))}，请尽快办理。"
            + _describe_review(MessageKind.APPROVAL, due_s, data)
        )
    if kind in REVIEW_MESSAGE_KINDS:
        return _describe_inspection(kind, level, due_s, days, data)
    # escalation
    who = data.get("owner", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    step = LEVELS.get(level, "督办")
    if data.get("ack"):
        return f"{step}：责任人 {who} 于 {data.get('assigned_on', '')} 收到任务，已 {_days(-days)}未签收，请督促签收"
    if data.get("report"):
        return (
            f"{step}：责任人 {who} 未按期反馈 {data.get('period_start', '')} 至 {data.get('period_end', '')} 的工作进展，"
            f"已逾期 {_days(-days)}"
        )
    return f"{step}：责任人 {who}，完成时间 {due_s}，已逾期 {_days(-days)}，请督促落实"


def _describe_review(kind: str, due_s: str, data: dict[str, Any]) -> str:
    """Lines of the items the web app writes (completions, extensions, their decisions, fresh links)."""
    who = data.get("owner", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    data = {**data, **{k: str(data[k]).strip().rstrip("。；;，,. ") for k in ("note", "reason") if data.get(k)}}
    if kind == MessageKind.APPROVAL:
        if data.get("request_kind") == RequestKind.EXTENSION:
            return (
                f"责任人 {who} 申请将完成时间由 {data.get('old_due', due_s)} 延至 {data.get('new_due', '')}，"
                f"理由：{data.get('note', '')}。请审批（批准或不予批准）"
            )
        return f"责任人 {who} 已提交办结，办结说明：{data.get('note', '')}。请审核佐证材料后办结或退回"
    if kind == MessageKind.APPROVED:
        return f"您提交的办结已由{data.get('reviewer', '领导小组办公室')}审核通过，该事项已办结。感谢您的辛勤工作"
    if kind == MessageKind.RETURNED:
        return (
            f"您提交的办结已被{data.get('reviewer', '领导小组办公室')}退回，退回原因：{data.get('reason', '')}。"
            f"请补充完善后重新提交（完成时间 {due_s}）"
        )
    if kind == MessageKind.EXTENSION_DECIDED:
        if data.get("approved"):
            return f"您的延期申请已获批准，完成时间调整为 {data.get('new_due', due_s)}（原定 {data.get('old_due', '')}），请按新的时间完成"
        return f"您申请延期至 {data.get('new_due', '')} 未获批准，理由：{data.get('reason', '')}。请仍按原定时间 {due_s} 完成"
    # relink
    return f"您申请的新链接（{RELINK_ACTIONS.get(data.get('action', ''), '办理')}）如下，原链接已过期或已使用"


def _describe_inspection(kind: str, level: int, due_s: str, days: int, data: dict[str, Any]) -> str:
    """Lines of review (督查) items (duban.reviews, duban.rules.reviews)."""
    name = f"「{data.get('review_title', '督查')}」"
    reply_by = data.get("reply_by", due_s)
    if kind == MessageKind.REVIEW_REQUEST:
        ask = str(data.get("ask") or "").strip().rstrip("。")
        return f"{name}请您于 {reply_by} 前填报该任务的已完成工作、佐证材料、存在问题和下一步计划" + (f"（督查要求：{ask}）" if ask else "")
    if kind == MessageKind.REVIEW_REMINDER:
        return f"{name}填报截止 {reply_by}，" + ("今天截止，请尽快填报" if days == 0 else f"还有 {_days(days)}，请按时填报")
    if kind == MessageKind.REVIEW_OVERDUE:
        return f"{name}填报截止 {reply_by}，已逾期 {_days(-days)}仍未填报，请尽快填报"
    if kind == MessageKind.REVIEW_ESCALATION:
        step = LEVELS.get(level, "督办")
        return f"{step}：{name}责任人 {data.get('owner', '')} 未按期填报（截止 {reply_by}），已逾期 {_days(-days)}，请督促填报"
    if kind == MessageKind.REVIEW_VERDICTS:
        return f"{name}填报已结束（{data.get('answered', 0)}/{data.get('items', 0)} 项已填报），请逐项评定（达标 / 基本达标 / 需整改）"
    if kind == MessageKind.REVIEW_FOLLOW_UP:
        note = str(data.get("note") or "").strip().rstrip("。")
        return f"{name}评定为“需整改”：{note}。请于 {due_s} 前完成「{data.get('milestone', '')}」" + (
            "" if data.get("task_owner", True) else "（您被指定为整改责任人，请与任务责任人协同办理）"
        )
    if kind == MessageKind.REVIEW_REPORT:
        return (
            f"{name}督查报告已生成：{data.get('items', 0)} 项任务，已填报 {data.get('answered', 0)} 项，"
            f"未填报 {data.get('non_responders', 0)} 项，需整改 {data.get('follow_ups', 0)} 项"
        )
    if kind == MessageKind.REVIEW_CANCELLED:
        reason = str(data.get("reason") or "").strip().rstrip("。")
        return f"{name}已撤销" + (f"（{reason}）" if reason else "") + "，无需再填报"
    return name


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> Environment:
    """One Jinja environment per template folder (templates compile once per process)."""
    loaders = [FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    return Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701  plain-text and chat templates (the HTML mail has its own, escaping environment)
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _items(payload: dict[str, Any], urls: dict[int, str]) -> list[Item]:
    return [
        Item(
            kind=e["kind"],
            code=e["code"],
            title=e["title"],
            milestone=e["milestone"],
            line=e["line"],
            links=[(label, urls[lid]) for label, lid in e["links"] if lid in urls],
            sort_key=tuple(e["sort"]),
            due=e.get("due"),
            days=e.get("days", 0),
            level=e.get("level", 0),
            history=list(e.get("history", ())),
        )
        for e in payload["items"]
    ]


def _groups(items: list[Item]) -> tuple[list[dict[str, Any]], list[str]]:
    every = (*GROUPS, NOTICE_GROUP)
    grouped: dict[str, list[Item]] = {g: [] for g, _ in every}
    for item in sorted(items, key=lambda i: i.sort_key):
        grouped[GROUP_OF.get(item.kind, NOTICE_GROUP[0])].append(item)
    groups = [{"key": g, "title": title, "entries": grouped[g]} for g, title in every if grouped[g]]
    counts = [f"{title.split('，')[0]} {len(grouped[g])} 项" for g, title in every if grouped[g]]
    return groups, counts


def render_subject(payload: dict[str, Any]) -> str:
    _, counts = _groups(_items(payload, {}))
    return f"【督办提醒】{payload['today']} {payload['recipient']}：" + "，".join(counts)


def digest_context(payload: dict[str, Any], urls: dict[int, str]) -> dict[str, Any]:
    """What every digest template (text, HTML, chat) receives."""
    groups, counts = _groups(_items(payload, urls))
    return dict(
        recipient=payload["recipient"],
        today=payload["today"],
        total=len(payload["items"]),
        groups=groups,
        counts=counts,
        plan_name=payload.get("plan_name", ""),
        office=payload.get("office", ""),
    )
