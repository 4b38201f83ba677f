"""What one ledger item says (zh-CN): ``describe`` gives the line of an item (a digest's ask, a
``duban check --dry-run`` preview), ``step_of`` names the milestone it is about, and
``assignment_notice`` lays out a 任务下达 notice (任务书, 完成标志, 时间表, …).

Facts differ by kind: deadline kinds say how close or late the due date is (a due date on a
non-working day names its last working day); approvals say how long they have waited; reviews
(督查) keep their reply-by date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from duban.vocabulary import REVIEW_MESSAGE_KINDS, LinkAction, MessageKind, RequestKind

LEVELS = {1: "部门负责人督办", 2: "分管校领导督办", 3: "领导小组办公室督办（列入通报）"}
WEEKDAYS = "一二三四五六日"
# kinds whose line names the milestone where it names the due date ("第 2 步「中期检查」完成时间 …")
STEP_INLINE = frozenset({MessageKind.DUE, MessageKind.OVERDUE, MessageKind.ESCALATION})
# kinds about one milestone whose line does not name it: the step comes first ("第 1 步「制定方案」：…")
STEP_FIRST = frozenset(
    {MessageKind.APPROVAL, MessageKind.APPROVAL_WAITING, MessageKind.APPROVED, MessageKind.RETURNED, MessageKind.EXTENSION_DECIDED}
)
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


def _days(n: int) -> str:
    return f"{n} 个工作日"


def weekday(d: dt.date) -> str:
    return f"星期{WEEKDAYS[d.weekday()]}"


def month_day(d: dt.date) -> str:
    """``11月13日（星期五）``"""
    return f"{d.month}月{d.day}日（{weekday(d)}）"


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def due_text(due: dt.date | None, data: dict[str, Any]) -> str:
    """The due date as a line shows it: ``2026-11-15（星期日）`` when it is not a working day."""
    if due is None:
        return ""
    return f"{due.isoformat()}（{weekday(due)}）" if data.get("due_workday") else due.isoformat()


def step_of(data: dict[str, Any]) -> str:
    """The milestone an item is about: ``第 2 步「中期检查」`` (``「…」`` without a step number,
    ``全部任务`` for an untitled final deadline, empty without a milestone)."""
    title, seq = str(data.get("milestone") or ""), data.get("seq")
    if data.get("final") and not title:
        return "全部任务"
    if title.startswith("第 ") and title.endswith(" 步"):  # an untitled step as ``duban.actions.label`` names it
        return title
    if seq and title:
        return f"第 {seq} 步「{title}」"
    if seq:
        return f"第 {seq} 步"
    return f"「{title}」" if title else ""


def due_soon(due: dt.date | None, days: int, data: dict[str, Any], today: dt.date | None) -> str:
    """How close a due date is: "还有 3 个工作日", "今天到期", or, for a due date after a weekend
    or holiday, "最后一个工作日为 11月13日（星期五），还有 2 个工作日" / "最后一个工作日为今天（…）"."""
    workday = _date(data.get("due_workday"))
    if days > 0:
        return (f"最后一个工作日为 {month_day(workday)}，" if workday else "") + f"还有 {_days(days)}"
    if due is None or due == today or (today is None and workday is None):
        return "今天到期"
    last = today or workday
    return f"最后一个工作日为今天（{last.month}月{last.day}日，{weekday(last)}），请抓紧办理" if last else "今天到期"


def describe(
    kind: str, level: int, due: dt.date | None, days: int, data: dict[str, Any], *, today: dt.date | None = None, step: bool = False
) -> str:
    """The one line that says what is asked and how late or close it is.

    ``today``: the day of the message (a due date that is not today is never "今天到期");
    ``step``: name the milestone in the line (a digest entry's headline names only the task).
    """
    where = step_of(data) if step else ""
    line = _describe(kind, level, due, days, data, today=today, where=where if kind in STEP_INLINE else "")
    return f"{where}：{line}" if where and kind in STEP_FIRST else line


def _describe(kind: str, level: int, due: dt.date | None, days: int, data: dict[str, Any], *, today: dt.date | None, where: str) -> str:
    due_s = due.isoformat() if due else ""
    if kind == MessageKind.DUE:
        return f"{where}完成时间 {due_text(due, data)}，{due_soon(due, days, data, today)}"
    if kind == MessageKind.OVERDUE:
        return f"{where}完成时间 {due_text(due, data)}，已逾期 {_days(-days)}，请尽快办理或申请延期"
    if kind == MessageKind.ACK:
        return f"该任务于 {data.get('assigned_on', '')} 下达给您，已 {_days(-days)}仍未签收，请及时签收"
    if kind == MessageKind.ASSIGNMENT:
        return assignment_line(data)
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
    if kind in (MessageKind.INSTRUCTION, MessageKind.URGED):
        return office_line(kind, due, data)
    return _describe_escalation(level, due, days, data, where)


def _describe_escalation(level: int, due: dt.date | None, days: int, data: dict[str, Any], where: str) -> str:
    who = data.get("owner", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    stage = f"持续督办（第 {data['renotice']} 次）" if data.get("renotice") else LEVELS.get(level, "督办")
    if data.get("ack"):
        return f"{stage}：责任人 {who} 于 {data.get('assigned_on', '')} 收到任务，已 {_days(-days)}未签收，请督促签收"
    if data.get("report"):
        return (
            f"{stage}：责任人 {who} 未按期反馈 {data.get('period_start', '')} 至 {data.get('period_end', '')} 的工作进展，"
            f"已逾期 {_days(-days)}"
        )
    return f"{stage}：责任人 {who}，{where}完成时间 {due_text(due, data)}，已逾期 {_days(-days)}，请督促落实"


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
        if data.get("approved") and data.get("asked") and data.get("asked") != data.get("new_due"):
            return (
                f"您申请延期至 {data['asked']}，领导小组办公室批准延期至 {data.get('new_due', due_s)}（原定 {data.get('old_due', '')}），"
                "请按批准的时间完成"
            )
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


def office_line(kind: str, due: dt.date | None, data: dict[str, Any]) -> str:
    """领导批示 and 催办 from the dashboard's task page (duban.office_edits)."""
    text = str(data.get("text") or "").strip()
    if kind == MessageKind.INSTRUCTION:
        return f"{data.get('by', '')} 同志对该任务作出批示：{text}"
    step = step_of(data)
    line = f"{data.get('by', '领导小组办公室')}催办：请抓紧推进该任务" + (f"，{step}完成时间 {due.isoformat()}" if step and due else "")
    return line + (f"。{text}" if text else "") + "。如有困难，请及时反馈进展或申请延期"


# ---------------------------------------------------------------------------------------------
# 任务下达: the notice of a task announced to its owner


def assignment_line(data: dict[str, Any]) -> str:
    """The ask of a 任务下达 notice (the notice itself: ``assignment_notice``)."""
    line = "现将该任务下达给您，请及时签收，并按时间表推进落实"
    grace = _date(data.get("grace_until"))
    return line + (f"。其中已到期事项，请于 {grace.isoformat()} 前办理或申请延期" if grace else "")


def _names(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value if v)
    return str(value or "")


def assignment_notice(data: dict[str, Any], today: dt.date | None) -> dict[str, Any]:
    """A 任务下达 notice laid out for the templates: ``fields`` (label, text) in reading order,
    ``timetable`` (each step with its date; ``passed`` when it is already due) and ``grace``."""
    lead = str(data.get("department") or "")
    owner = str(data.get("owner") or "")
    fields = [
        ("任务书", str(data.get("statement") or "").strip()),
        ("完成标志", str(data.get("done_criteria") or "").strip()),
        ("完成时限", str(data.get("deadline") or "").strip()),
        ("牵头单位", f"{lead}（责任人：{owner}）" if lead and owner else lead or (f"责任人：{owner}" if owner else "")),
        ("配合单位", _names(data.get("partners"))),
        ("分管校领导", _names(data.get("supervisor"))),
    ]
    timetable: list[dict[str, Any]] = []
    for m in data.get("milestones") or ():
        due = _date(m.get("due"))
        title = str(m.get("title") or "") or ("完成全部任务" if m.get("final") else "")
        timetable.append(
            {
                "step": "最终完成" if m.get("final") else f"第 {m.get('seq', len(timetable) + 1)} 步",
                "due": due.isoformat() if due else "待定",
                "title": title,
                "passed": bool(due and today and due < today),
            }
        )
    grace = _date(data.get("grace_until"))
    return {
        "fields": [(label, text) for label, text in fields if text],
        "timetable": timetable,
        "grace": f"其中已到期事项，请于 {grace.isoformat()} 前办理或申请延期。" if grace else "",
    }
