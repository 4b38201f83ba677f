"""Build one digest message per recipient from the ledger items of a run (zh-CN, Jinja2).

A digest has one entry per task: its headline (code and title), each thing asked about the task
(an *ask*: one ledger item, its line from ``notifications.lines``), and the task's action links
once each.  Entries are grouped the way a 督办 office reads them (by their most urgent ask):
new tasks, overdue, reviews, what the reader is asked to supervise (督办), what is due soon,
then acknowledgements and reports to file.  The reader's role (owner, head, leader, office,
reviewer) follows from the kinds of their asks and sets the subject and the footer, which names
only the actions actually linked.

Payloads written before entries were grouped have one ask per entry (the entry itself, its
milestone in the headline); they render as they did.  Templates live in ``notifications/templates``;
an institution may put its own copies in ``template_dir`` to override them without touching code.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from duban.vocabulary import Audience, LinkAction, MessageKind
from notifications.lines import LEVELS as LEVELS  # re-exported
from notifications.lines import RELINK_ACTIONS as RELINK_ACTIONS  # re-exported
from notifications.lines import assignment_notice, due_soon, due_text
from notifications.lines import describe as describe  # re-exported (duban.sweep, duban.cli previews)

TEMPLATES = Path(__file__).parent / "templates"
GROUPS = (
    ("assignment", "新下达任务，请及时签收"),
    ("instruction", "领导批示与催办，请抓紧落实"),
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
    MessageKind.ASSIGNMENT: "assignment",
    MessageKind.OVERDUE: "overdue",
    MessageKind.REPORT_OVERDUE: "overdue",
    MessageKind.ESCALATION: "escalation",
    MessageKind.DUE: "due",
    MessageKind.REPORT_DUE: "todo",
    MessageKind.ACK: "todo",
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
    # the dashboard's task page (duban.office_edits): to the owner
    MessageKind.INSTRUCTION: "instruction",
    MessageKind.URGED: "instruction",
}
# Kinds that are not in GROUPS (notices about the system itself, e.g. an unreachable person)
# are listed last under this title.
NOTICE_GROUP = ("notice", "系统提示，请处理")
_RANK = {key: i for i, (key, _) in enumerate((*GROUPS, NOTICE_GROUP))}
DEADLINE_KINDS = frozenset({MessageKind.DUE, MessageKind.OVERDUE, MessageKind.REPORT_DUE, MessageKind.REPORT_OVERDUE})
_ANSWER_KINDS = frozenset({MessageKind.REVIEW_REQUEST, MessageKind.REVIEW_REMINDER, MessageKind.REVIEW_OVERDUE})


def urgency(kind: str) -> int:
    """How urgent a kind is within one task (lower first): the rank of its group."""
    return _RANK[GROUP_OF.get(kind, NOTICE_GROUP[0])]


class Reader(StrEnum):
    """Who reads a digest, as its items show: what they are asked to do."""

    OWNER = "owner"  # 责任人: deadlines, acknowledgements, reports, decisions about their requests
    REVIEWER = "reviewer"  # 审核: completions and extensions, review verdicts
    HEAD = "head"  # 部门负责人: escalation level 1
    LEADER = "leader"  # 分管校领导 / 领导小组: escalation level 2
    OFFICE = "office"  # 领导小组办公室: escalation level 3 and its re-notices


_ESCALATED = {1: Reader.HEAD, 2: Reader.LEADER, 3: Reader.OFFICE}
_REVIEWER_KINDS = frozenset({MessageKind.APPROVAL, MessageKind.APPROVAL_WAITING, MessageKind.REVIEW_VERDICTS})
_NEUTRAL_KINDS = frozenset({MessageKind.UNREACHABLE, MessageKind.RELINK, MessageKind.REVIEW_REPORT})


def reader_of(kind: str, level: int) -> Reader | None:
    """The role an item speaks to (None: a notice or a fresh link, anyone may get it)."""
    if kind in (MessageKind.ESCALATION, MessageKind.REVIEW_ESCALATION):
        return _ESCALATED.get(level, Reader.OFFICE)
    if kind in _REVIEWER_KINDS:
        return Reader.REVIEWER
    return None if kind in _NEUTRAL_KINDS else Reader.OWNER


@dataclass
class Ask:
    """One thing asked about a task (one ledger item) and its facts."""

    kind: str
    line: str
    level: int = 0
    due: str | None = None  # ISO date
    days: int = 0  # working days left (>0) or late (<0); approvals: -(days waited)
    history: list[str] = field(default_factory=list)  # what was sent before about the same task (escalations)
    facts: dict[str, Any] = field(default_factory=dict)  # due_workday, renotice, waited, submitted_on, reply_by, …
    today: str | None = None  # the digest's day (ISO)
    notice: dict[str, Any] | None = None  # a 任务下达 notice laid out (``lines.assignment_notice``)

    @property
    def deadline(self) -> bool:
        """A deadline ask: how close or late its due date is means something."""
        if self.kind == MessageKind.ESCALATION:
            return not self.facts.get("ack")
        return self.kind in DEADLINE_KINDS

    @property
    def when(self) -> str:
        """How close or late a deadline is ("还有 3 个工作日", "已逾期 5 个工作日", "今天到期");
        empty for every other kind (an approval has no due date of its own)."""
        if self.due is None or not self.deadline:
            return ""
        if self.days < 0:
            return f"已逾期 {-self.days} 个工作日"
        due, today = dt.date.fromisoformat(self.due), dt.date.fromisoformat(self.today) if self.today else None
        soon = due_soon(due, self.days, self.facts, today)
        return soon.replace("，请抓紧办理", "") if self.days == 0 else soon

    @property
    def fact(self) -> str:
        """The ask's key fact in a few words (the HTML mail's grey line)."""
        f = self.facts
        if self.deadline and self.due:
            report = self.kind in (MessageKind.REPORT_DUE, MessageKind.REPORT_OVERDUE) or f.get("report")
            due = self.due if report else due_text(dt.date.fromisoformat(self.due), f)
            return f"{'反馈截止' if report else '完成时间'} {due} · {self.when}"
        if self.kind == MessageKind.APPROVAL_WAITING:
            return f"{f.get('submitted_on', '')} 提交 · 已等待审核 {f.get('waited', -self.days)} 个工作日".strip()
        if self.kind == MessageKind.APPROVAL and f.get("submitted_on"):
            return "今天提交，等待审核" if f["submitted_on"] == self.today else f"{f['submitted_on']} 提交，等待审核"
        if self.kind in _ANSWER_KINDS and f.get("reply_by"):
            return f"填报截止 {f['reply_by']}"
        if (self.kind == MessageKind.ACK or f.get("ack")) and f.get("assigned_on"):
            return f"{f['assigned_on']} 下达 · 已 {-self.days} 个工作日未签收"
        return ""


@dataclass
class Item:
    """One entry of a digest: a task (or a notice) with its asks and its links."""

    code: str
    title: str
    milestone: str  # only in payloads written before entries were grouped (the headline names it)
    asks: list[Ask]
    links: list[tuple[str, str]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # the actions of ``links``
    sort_key: tuple = ()

    # the most urgent ask's facts (templates written for one ask per entry read these)
    @property
    def kind(self) -> str:
        return self.asks[0].kind

    @property
    def line(self) -> str:
        return self.asks[0].line

    @property
    def level(self) -> int:
        return self.asks[0].level

    @property
    def due(self) -> str | None:
        return self.asks[0].due

    @property
    def days(self) -> int:
        return self.asks[0].days

    @property
    def when(self) -> str:
        return self.asks[0].when

    @property
    def history(self) -> list[str]:
        return self.asks[0].history


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


_LABEL_ACTION = {a.label: str(a) for a in LinkAction}


def _ask(a: dict[str, Any], today: str | None) -> Ask:
    notice = a.get("notice")
    return Ask(
        kind=a["kind"],
        line=a["line"],
        level=a.get("level", 0),
        due=a.get("due"),
        days=a.get("days", 0),
        history=list(a.get("history", ())),
        facts=dict(a.get("facts", {})),
        today=today,
        notice=assignment_notice(notice, dt.date.fromisoformat(today) if today else None) if notice is not None else None,
    )


def _items(payload: dict[str, Any], urls: dict[int, str]) -> list[Item]:
    out = []
    today = payload.get("today")
    for e in payload["items"]:
        links = [(label, urls[lid], i) for i, (label, lid) in enumerate(e["links"]) if lid in urls]
        actions = e.get("actions") or [_LABEL_ACTION.get(label, "") for label, _ in e["links"]]
        out.append(
            Item(
                code=e["code"],
                title=e["title"],
                milestone=e.get("milestone", ""),
                asks=[_ask(a, today) for a in e["asks"]] if e.get("asks") else [_ask(e, today)],
                links=[(label, url) for label, url, _ in links],
                actions=[actions[i] for _, _, i in links],
                sort_key=tuple(e["sort"]),
            )
        )
    return out


def link_ids(payload: dict[str, Any]) -> list[int]:
    """Every link a digest's payload names: its entries' action links and the person's own page."""
    ids = [lid for item in payload.get("items", ()) for _, lid in item.get("links", ())]
    return ids + ([payload["mine"]] if payload.get("mine") is not None else [])


def page_url(payload: dict[str, Any], urls: dict[int, str]) -> str | None:
    """The URL of the reader's own page (我的督办), when the digest carries one."""
    mine = payload.get("mine")
    return urls.get(mine) if mine is not None else None


def _groups(items: list[Item]) -> tuple[list[dict[str, Any]], list[str]]:
    every = (*GROUPS, NOTICE_GROUP)
    grouped: dict[str, list[Item]] = {g: [] for g, _ in every}
    for item in sorted(items, key=lambda i: i.sort_key):
        grouped[GROUP_OF.get(item.kind, NOTICE_GROUP[0])].append(item)
    groups = [{"key": g, "title": title, "entries": grouped[g]} for g, title in every if grouped[g]]
    counts = [f"{title.split('，')[0]} {len(grouped[g])} 项" for g, title in every if grouped[g]]
    return groups, counts


def readers(items: list[Item]) -> list[Reader]:
    """The roles a digest speaks to, in the order its footer names them."""
    found = {r for item in items for a in item.asks if (r := reader_of(a.kind, a.level)) is not None}
    return [r for r in Reader if r in found]


def tag(items: list[Item]) -> str:
    """The subject's tag: 【任务下达】 when a task is announced, 【待审核】 for a reviewer only,
    【请督促落实】 for a head or leader only, 【督办提醒】 otherwise."""
    return _tag([(a.kind, a.level) for item in items for a in item.asks])


def _tag(asks: list[tuple[str, int]]) -> str:
    """:func:`tag` from the asks' kinds and levels."""
    if any(kind == MessageKind.ASSIGNMENT for kind, _ in asks):
        return "【任务下达】"
    roles = {r for kind, level in asks if (r := reader_of(kind, level)) is not None}
    if roles == {Reader.REVIEWER}:
        return "【待审核】"
    if roles and roles <= {Reader.HEAD, Reader.LEADER}:
        return "【请督促落实】"
    return "【督办提醒】"


def render_subject(payload: dict[str, Any]) -> str:
    """The subject: the tag, the day, the reader and the count of each group (as ``_groups``
    counts them), read from the payload's entries without building them (the sweep writes one
    subject per digest)."""
    asks = [a for e in payload["items"] for a in (e["asks"] if e.get("asks") else (e,))]
    heads = [e["asks"][0] if e.get("asks") else e for e in payload["items"]]
    per_group: dict[str, int] = {}
    for head in heads:
        group = GROUP_OF.get(head["kind"], NOTICE_GROUP[0])
        per_group[group] = per_group.get(group, 0) + 1
    counts = [f"{title.split('，')[0]} {per_group[g]} 项" for g, title in (*GROUPS, NOTICE_GROUP) if per_group.get(g)]
    tagged = _tag([(a["kind"], a.get("level", 0)) for a in asks])
    return f"{tagged}{payload['today']} {payload['recipient']}：" + "，".join(counts)


def digest_context(payload: dict[str, Any], urls: dict[int, str]) -> dict[str, Any]:
    """What every digest template (text, HTML, chat) receives."""
    items = _items(payload, urls)
    groups, counts = _groups(items)
    return dict(
        recipient=payload["recipient"],
        today=payload["today"],
        total=len(items),
        groups=groups,
        counts=counts,
        plan_name=payload.get("plan_name", ""),
        office=payload.get("office", ""),
        tag=tag(items),
        mine_url=page_url(payload, urls),
        intro=intro(payload, items),
        footer=footer(payload, items),
    )


# ---------------------------------------------------------------------------------------------
# The opening line and the footer, by who reads the digest

_PART_NAMES = {
    Reader.OWNER: "您负责办理的任务",
    Reader.REVIEWER: "待您审核的申请",
    Reader.HEAD: "本部门的督办任务",
    Reader.LEADER: "您分管部门的督办任务",
    Reader.OFFICE: "列入办公室督办的任务",
}
_OWNER_ACTIONS = (LinkAction.ACK, LinkAction.PROGRESS, LinkAction.DONE, LinkAction.EXTEND, LinkAction.REVIEW_ANSWER)
_VIEW_CLAUSE = "，点击“查看任务”可了解任务详情和办理情况"


def _part(reader: Reader, actions: set[str]) -> str:
    """What a reader is asked to do, naming only the actions linked for them."""
    if reader == Reader.OWNER:
        labels = [a.label for a in _OWNER_ACTIONS if a in actions]
        if labels:
            return f"请点击链接直接办理（{'、'.join(labels)}）"
        return "请点击“查看任务”了解详情" if LinkAction.VIEW in actions else "请知悉"
    if reader == Reader.REVIEWER:
        ways = [
            text
            for action, text in (
                (LinkAction.REVIEW, "点击“审核”逐项办理"),
                (LinkAction.QUEUE, "点击“查看待审核事项”集中办理"),
                (LinkAction.REVIEW_VERDICT, "点击“督查评定”逐项评定"),
            )
            if action in actions
        ]
        return "请及时审核" + (f"：{'，或'.join(ways)}" if ways else "")
    view = _VIEW_CLAUSE if LinkAction.VIEW in actions else ""
    return {Reader.HEAD: "请督促责任人按时落实", Reader.LEADER: "请督促分管部门按时落实"}.get(reader, "请跟踪督办、协调推进") + view


def _asked(payload: dict[str, Any], items: list[Item]) -> str:
    """The footer's first sentence: what the reader is asked to do, part by part."""
    if payload.get("audience") == Audience.DEPARTMENT:
        return "以上为今日督办事项的抄送，请协助责任人按时落实；办理请使用责任人本人收到的链接。"
    roles = readers(items)
    actions = {r: {a for i in items if any(reader_of(x.kind, x.level) == r for x in i.asks) for a in i.actions} for r in roles}
    linked = "链接无需登录。" if any(i.links for i in items) else ""
    if not roles:
        return "以上事项请按提示处理。" + linked
    if len(roles) == 1:
        return f"以上事项{_part(roles[0], actions[roles[0]])}。" + linked
    return "以上事项中，" + "；".join(f"{_PART_NAMES[r]}，{_part(r, actions[r])}" for r in roles) + "。" + linked


def contact_line(payload: dict[str, Any]) -> str:
    """Whom to call: the office members and their mobiles (payloads from before: the office's names)."""
    contacts = payload.get("office_contacts")
    if contacts:
        people = "、".join(f"{name} {mobile}" if mobile else str(name) for name, mobile in contacts)
        return f"如有疑问，请联系领导小组办公室：{people}。"
    return f"如有疑问，请联系{payload.get('office') or '领导小组办公室'}。"


def footer(payload: dict[str, Any], items: list[Item]) -> list[str]:
    """The footer's lines: what to do (only what is linked), whom to ask, and where it comes from."""
    return [_asked(payload, items), contact_line(payload), "本通知由督办系统自动发送，同一事项同一阶段只提醒一次。"]


def intro(payload: dict[str, Any], items: list[Item]) -> str:
    """The opening sentence, by what the digest holds."""
    plan = f"（{payload['plan_name']}）" if payload.get("plan_name") else ""
    n, today = len(items), payload["today"]
    if items and all(i.kind == MessageKind.ASSIGNMENT for i in items):
        return f"现将以下 {n} 项任务下达给您{plan}，任务书和时间表如下。"
    roles = set(readers(items))
    if roles == {Reader.REVIEWER}:
        return f"截至 {today}，以下 {n} 项事项待您审核{plan}。"
    if roles and roles <= {Reader.HEAD, Reader.LEADER}:
        return f"截至 {today}，以下 {n} 项任务需要您督促落实{plan}。"
    return f"截至 {today}，请您关注以下 {n} 项督办事项{plan}。"
