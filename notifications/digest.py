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

TEMPLATES = Path(__file__).parent / "templates"
LEVELS = {1: "部门负责人督办", 2: "分管校领导督办", 3: "领导小组办公室督办（列入通报）"}
GROUPS = (
    ("overdue", "已逾期，请尽快办理"),
    ("escalation", "请督促落实"),
    ("due", "即将到期"),
    ("todo", "待签收、待反馈"),
)
GROUP_OF = {"overdue": "overdue", "report_overdue": "overdue", "escalation": "escalation", "due": "due", "report_due": "todo", "ack": "todo"}


@dataclass
class Item:
    kind: str
    code: str
    title: str
    milestone: str
    line: str
    links: list[tuple[str, str]] = field(default_factory=list)
    sort_key: tuple = ()


def _days(n: int) -> str:
    return f"{n} 个工作日"


def describe(kind: str, level: int, due: dt.date | None, days: int, data: dict[str, Any]) -> str:
    """The one line that says what is asked and how late or close it is."""
    due_s = due.isoformat() if due else ""
    if kind == "due":
        return f"完成时间 {due_s}，今天到期" if days == 0 else f"完成时间 {due_s}，还有 {_days(days)}"
    if kind == "overdue":
        return f"完成时间 {due_s}，已逾期 {_days(-days)}，请尽快办理或申请延期"
    if kind == "ack":
        return f"该任务于 {data.get('assigned_on', '')} 下达给您，已 {_days(-days)}仍未签收，请及时签收"
    if kind == "report_due":
        period = f"{data.get('period_start', '')} 至 {data.get('period_end', '')}"
        return f"请于 {due_s} 前反馈本期（{period}）工作进展" + ("，今天截止" if days == 0 else "")
    if kind == "report_overdue":
        period = f"{data.get('period_start', '')} 至 {data.get('period_end', '')}"
        return f"本期（{period}）工作进展尚未反馈，已超过截止日期 {due_s}，请尽快反馈"
    # escalation
    who = data.get("owner", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    step = LEVELS.get(level, "督办")
    if data.get("ack"):
        return f"{step}：责任人 {who} 于 {data.get('assigned_on', '')} 收到任务，已 {_days(-days)}未签收，请督促签收"
    if data.get("report"):
        return f"{step}：责任人 {who} 未按期反馈 {data.get('period_start', '')} 至 {data.get('period_end', '')} 的工作进展，已逾期 {_days(-days)}"
    return f"{step}：责任人 {who}，完成时间 {due_s}，已逾期 {_days(-days)}，请督促落实"


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> Environment:
    """One Jinja environment per template folder (templates compile once per process)."""
    loaders = [FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    return Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _items(payload: dict[str, Any], urls: dict[int, str]) -> list[Item]:
    return [
        Item(kind=e["kind"], code=e["code"], title=e["title"], milestone=e["milestone"], line=e["line"],
             links=[(label, urls[lid]) for label, lid in e["links"] if lid in urls], sort_key=tuple(e["sort"]))
        for e in payload["items"]
    ]


def _groups(items: list[Item]) -> tuple[list[dict[str, Any]], list[str]]:
    grouped: dict[str, list[Item]] = {g: [] for g, _ in GROUPS}
    for item in sorted(items, key=lambda i: i.sort_key):
        grouped[GROUP_OF[item.kind]].append(item)
    groups = [{"title": title, "entries": grouped[g]} for g, title in GROUPS if grouped[g]]
    counts = [f"{title.split('，')[0]} {len(grouped[g])} 项" for g, title in GROUPS if grouped[g]]
    return groups, counts


def render_subject(payload: dict[str, Any]) -> str:
    _, counts = _groups(_items(payload, {}))
    return f"【督办提醒】{payload['today']} {payload['recipient']}：" + "，".join(counts)


def render_text(payload: dict[str, Any], urls: dict[int, str], *, template_dir: Path | None = None) -> str:
    """The plain-text digest of a stored payload, with its links' URLs filled in."""
    groups, _ = _groups(_items(payload, urls))
    return environment(template_dir).get_template("digest.txt.j2").render(
        recipient=payload["recipient"], today=payload["today"], total=len(payload["items"]), groups=groups,
        plan_name=payload.get("plan_name", ""), office=payload.get("office", ""),
    )
