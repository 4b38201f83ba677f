"""A task's timeline: everything that happened to it, in time order, as people read it.

One list from five sources, each loaded in one query:

- the audit trail (``events``): what the owner, the office, an import or a review did, with the
  evidence attached to each;
- the ledger (``notifications``): every reminder, escalation, notice, 批示 and 催办 about the task,
  with its recipient, the channel(s) of its digest and the outcome (sent, failed and why, waiting);
- evidence not attached to an event (a review answer's files);
- requests (办结 / 延期) nobody recorded an event for, and each request's current state;
- the reviews (督查) the task was part of.

Who did it is a person's name; an import or a command run by the office reads
"领导小组办公室（导入）" / "领导小组办公室", never an operating-system account such as "root"
(:func:`actor_name` maps rows written before imports named the office).

``for_person``: the owner's own view (the link page): the events, and only the ledger items sent
to that person (no escalations to their head, no other people's addresses).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.approvals import REQUEST_STATUS
from duban.evidence import human_size
from duban.links import local_time
from duban.models import Delivery, Digest, Event, Evidence, Milestone, Notification, Person, Request, Review, ReviewItem, Task
from duban.plans.writes import IMPORT_ACTOR, OFFICE_ACTOR
from duban.sweep.kinds import facts
from duban.vocabulary import EventKind, ItemState, LedgerStatus, RequestKind, ReviewState
from notifications.channel import label as channel_label
from notifications.lines import describe

EVENT_LABELS: dict[str, str] = {
    EventKind.TASK_CREATED: "下达任务",
    EventKind.TASK_UPDATED: "任务内容调整",
    EventKind.TASK_RESTORED: "任务恢复",
    EventKind.TASK_ARCHIVED: "任务归档",
    EventKind.OWNER_CHANGED: "更换责任人",
    EventKind.MILESTONE_ADDED: "新增里程碑",
    EventKind.MILESTONE_DUE_CHANGED: "调整完成时间",
    EventKind.MILESTONE_ARCHIVED: "里程碑归档",
    EventKind.MILESTONE_RESTORED: "里程碑恢复",
    EventKind.ACKNOWLEDGED: "签收",
    EventKind.PROGRESS_REPORTED: "反馈进展",
    EventKind.COMPLETION_SUBMITTED: "提交办结",
    EventKind.MILESTONE_DONE: "办结",
    EventKind.COMPLETION_APPROVED: "审核通过（办结）",
    EventKind.COMPLETION_RETURNED: "退回",
    EventKind.EXTENSION_REQUESTED: "申请延期",
    EventKind.EXTENSION_APPROVED: "批准延期",
    EventKind.EXTENSION_REFUSED: "不予批准延期",
    EventKind.REVIEW_ANSWERED: "督查填报",
    EventKind.REVIEW_JUDGED: "督查评定",
    EventKind.TASK_ANNOUNCED: "任务下达",
    EventKind.INSTRUCTION: "领导批示",
    EventKind.URGED: "催办",
    EventKind.OFFICE_REASSIGNED: "更换责任人（办公室调整）",
    EventKind.OFFICE_DUE_MOVED: "调整完成时间（办公室调整）",
    EventKind.OFFICE_ARCHIVED: "任务归档（办公室决定）",
}
HIDDEN_EVENTS = frozenset({EventKind.LINK_RENEWAL})
# an operating-system account name ("root", "duban", "svc-duban$"): what imports wrote before they named the office
_OS_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")
_OFFICE_CHANNELS = {"import": IMPORT_ACTOR, "cli": OFFICE_ACTOR}


@dataclass
class FileView:
    id: int
    kind: str
    name: str
    url: str | None
    size: str


@dataclass
class Entry:
    """One line of the timeline."""

    at: dt.datetime
    when: str  # local time as people read it
    source: str  # event | notice | evidence | request | review
    label: str
    actor: str = ""
    milestone: str = ""
    detail: str = ""
    recipient: str = ""  # a ledger item's recipient
    channels: str = ""  # the channel(s) of its digest
    outcome: str = ""  # 已发送 / 发送失败：原因 / 待发送
    failed: bool = False
    evidence: list[FileView] = field(default_factory=list)


def actor_name(actor: str | None, channel: str | None) -> str:
    """Who did it, as people read it: an import or a command that named an operating-system
    account reads as the office."""
    office = _OFFICE_CHANNELS.get(channel or "")
    if office is not None and (not actor or actor == "unknown" or _OS_USER.match(actor)):
        return office
    return actor or ""


def event_detail(kind: str, data: dict[str, Any]) -> str:
    """What an event says beyond its label (a report's text, a date moved, a reason)."""
    if kind == EventKind.PROGRESS_REPORTED:
        return data.get("text", "")
    if kind in (EventKind.COMPLETION_SUBMITTED, EventKind.MILESTONE_DONE):
        return data.get("note", "")
    if kind == EventKind.COMPLETION_RETURNED:
        return f"退回原因：{data.get('reason', '')}"
    if kind == EventKind.COMPLETION_APPROVED:
        return f"审核意见：{data['note']}" if data.get("note") else ""
    if kind == EventKind.EXTENSION_REQUESTED:
        return f"申请将完成时间由 {data.get('from', '')} 延至 {data.get('to', '')}。理由：{data.get('reason', '')}"
    if kind == EventKind.EXTENSION_APPROVED:
        return f"完成时间由 {data.get('from', '')} 调整为 {data.get('to', '')}" + (
            f"。审核意见：{data['note']}" if data.get("note") else ""
        )
    if kind == EventKind.EXTENSION_REFUSED:
        return f"申请延至 {data.get('to', '')}，不予批准。理由：{data.get('reason', '')}"
    if kind == EventKind.REVIEW_ANSWERED:
        return f"「{data.get('review_title', '督查')}」已完成工作：{data.get('done', '')}"
    if kind == EventKind.REVIEW_JUDGED:
        return f"「{data.get('review_title', '督查')}」评定为“{data.get('verdict', '')}”" + (
            f"：{data['note']}" if data.get("note") else ""
        )
    return _office_detail(kind, data)


def _office_detail(kind: str, data: dict[str, Any]) -> str:
    reason = f"。理由：{data['reason']}" if data.get("reason") else ""
    if kind in (EventKind.OWNER_CHANGED, EventKind.OFFICE_REASSIGNED):
        return f"{data.get('from') or ''} → {data.get('to') or ''}{reason}"
    if kind in (EventKind.MILESTONE_DUE_CHANGED, EventKind.OFFICE_DUE_MOVED):
        return f"{data.get('from', '')} → {data.get('to', '')}{reason}"
    if kind == EventKind.OFFICE_ARCHIVED:
        return reason.lstrip("。")
    if kind in (EventKind.INSTRUCTION, EventKind.URGED):
        return data.get("text", "")
    if kind == EventKind.TASK_ANNOUNCED:
        return f"责任人：{data.get('owner', '')}" + ("" if data.get("notice", True) else "（线下下达，未发送通知）")
    return ""


def _step(m: Any) -> str:
    if m is None:
        return ""
    return m.title or f"第 {m.seq} 步"


def timeline(session: Session, task: Task, *, tz: Any, for_person: int | None = None) -> list[Entry]:
    """The task's timeline, oldest first (see the module docstring)."""
    steps = {m.id: m for m in session.execute(select(Milestone.id, Milestone.seq, Milestone.title).where(Milestone.task_id == task.id))}
    entries = _events(session, task.id, steps, tz)
    entries += _notices(session, task.id, steps, tz, for_person)
    if for_person is None:  # the owner's view: their task's events and what was sent to them
        entries += _loose_evidence(session, task.id, steps, tz)
        entries += _requests(session, task.id, steps, tz)
        entries += _reviews(session, task.id, tz)
    entries.sort(key=lambda e: e.at)
    return entries


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)  # SQLite keeps UTC wall times


def _files(rows: list[Any]) -> list[FileView]:
    return [FileView(e.id, e.kind, e.filename or e.url or "", e.url, human_size(e.size)) for e in rows]


def _events(session: Session, task_id: int, steps: dict[int, Any], tz: Any) -> list[Entry]:
    files: dict[int, list[Any]] = {}
    for e in session.scalars(select(Evidence).where(Evidence.task_id == task_id, Evidence.event_id.is_not(None)).order_by(Evidence.id)):
        files.setdefault(e.event_id or 0, []).append(e)
    out = []
    for ev in session.scalars(select(Event).where(Event.task_id == task_id, Event.kind.not_in(sorted(HIDDEN_EVENTS))).order_by(Event.id)):
        at = _aware(ev.at)
        out.append(
            Entry(
                at=at,
                when=local_time(at, tz),
                source="event",
                label=EVENT_LABELS.get(ev.kind, ev.kind),
                actor=actor_name(ev.actor, ev.channel),
                milestone=_step(steps.get(ev.milestone_id or 0)),
                detail=event_detail(ev.kind, ev.data or {}),
                evidence=_files(files.get(ev.id, [])),
            )
        )
    return out


def _notices(session: Session, task_id: int, steps: dict[int, Any], tz: Any, for_person: int | None) -> list[Entry]:
    q = (
        select(Notification, Person.name, Digest)
        .join(Person, Person.id == Notification.recipient_id)
        .outerjoin(Digest, Digest.id == Notification.digest_id)
        .where(Notification.task_id == task_id)
        .order_by(Notification.id)
    )
    if for_person is not None:
        q = q.where(Notification.recipient_id == for_person)
    rows = session.execute(q).all()
    attempts: dict[int, list[Any]] = {}
    digest_ids = sorted({d.id for _, _, d in rows if d is not None})
    if digest_ids:
        for a in session.scalars(select(Delivery).where(Delivery.digest_id.in_(digest_ids)).order_by(Delivery.id)):
            attempts.setdefault(a.digest_id, []).append(a)
    out = []
    for n, name, digest in rows:
        at = _aware(n.created_at)
        line = describe(n.kind, n.level, n.due_date, n.days, n.data or {}, today=n.decided_on)
        channels, outcome, failed = _outcome(n, digest, attempts.get(digest.id, []) if digest else [])
        out.append(
            Entry(
                at=at,
                when=local_time(at, tz),
                source="notice",
                label=facts(n.kind).label or n.kind,
                milestone=_step(steps.get(n.milestone_id or 0)),
                detail=line,
                recipient=name,
                channels=channels,
                outcome=outcome,
                failed=failed,
            )
        )
    return out


def _outcome(n: Notification, digest: Digest | None, attempts: list[Delivery]) -> tuple[str, str, bool]:
    """(channels, outcome, failed) of a ledger item, as its digest and delivery attempts have it."""
    if digest is None:
        return "", "待发送" if n.status == LedgerStatus.PENDING else "未发送", False
    used = list(dict.fromkeys(a.channel for a in attempts)) or [digest.channel]
    channels = "、".join(channel_label(c) for c in used)
    if digest.status == LedgerStatus.SENT:
        return channels, f"已发送（{local_time(_aware(digest.sent_at), None)[:16]}）" if digest.sent_at else "已发送", False
    errors = [f"{channel_label(a.channel)}：{a.error}" for a in attempts if not a.ok and a.error]
    if digest.status == LedgerStatus.FAILED or errors:
        reason = errors[-1] if errors else digest.last_error or ""
        return channels, "发送失败" + (f"（{reason}）" if reason else "") + "，将自动重试", True
    return channels, "发送中" if digest.status == LedgerStatus.SENDING else "待发送", False


def _loose_evidence(session: Session, task_id: int, steps: dict[int, Any], tz: Any) -> list[Entry]:
    """Evidence not attached to an event (a review answer's files)."""
    rows = session.execute(
        select(Evidence, Person.name)
        .join(Person, Person.id == Evidence.person_id)
        .where(Evidence.task_id == task_id, Evidence.event_id.is_(None))
        .order_by(Evidence.id)
    ).all()
    out = []
    for e, name in rows:
        at = _aware(e.created_at)
        what = "督查填报的佐证材料" if e.review_item_id else "佐证材料"
        out.append(
            Entry(
                at, local_time(at, tz), "evidence", what, actor=name, milestone=_step(steps.get(e.milestone_id or 0)), evidence=_files([e])
            )
        )
    return out


def _requests(session: Session, task_id: int, steps: dict[int, Any], tz: Any) -> list[Entry]:
    """Requests (办结 / 延期) with their current state; a decided one also at its decision."""
    rows = session.execute(
        select(Request, Person.name).join(Person, Person.id == Request.person_id).where(Request.task_id == task_id).order_by(Request.id)
    ).all()
    deciders = dict(
        session.execute(
            select(Person.id, Person.name).where(Person.id.in_({r.decided_by_id for r, _ in rows if r.decided_by_id} or {-1}))
        ).all()
    )
    out = []
    for r, name in rows:
        at = _aware(r.created_at)
        state = REQUEST_STATUS.get(r.status, r.status)
        what = RequestKind.label_of(r.kind)
        detail = f"申请延至 {r.new_due_date.isoformat()}" if r.new_due_date else ""
        if r.decided_at is not None:
            by = deciders.get(r.decided_by_id or 0, "")
            detail = "；".join(x for x in (detail, f"{local_time(_aware(r.decided_at), tz)} {by} 审核：{state}", r.decision_note) if x)
        step = _step(steps.get(r.milestone_id or 0))
        out.append(Entry(at, local_time(at, tz), "request", f"{what}（{state}）", actor=name, milestone=step, detail=detail))
    return out


def _reviews(session: Session, task_id: int, tz: Any) -> list[Entry]:
    """The reviews (督查) the task was part of: asked, and where the item stands."""
    rows = session.execute(
        select(Review, ReviewItem)
        .join(ReviewItem, ReviewItem.review_id == Review.id)
        .where(ReviewItem.task_id == task_id)
        .order_by(Review.id)
    ).all()
    out = []
    for rv, item in rows:
        at = _aware(rv.requests_sent_at or rv.created_at)
        state = ItemState.label_of(item.status) if rv.status != ReviewState.CANCELLED else ReviewState.CANCELLED.label
        verdict = f"；评定：{item.verdict}" + (f"（{item.verdict_note}）" if item.verdict_note else "") if item.verdict else ""
        detail = f"填报截止 {rv.reply_by.isoformat()}；{state}{verdict}"
        out.append(Entry(at, local_time(at, tz), "review", f"督查「{rv.title}」", actor=rv.started_by, detail=detail))
    return out
