"""Paper: the numbered 督办单 of a task and the 督办通报 as print-ready PDF (A4, CJK fonts embedded).

- :func:`issue_notice` gives a task its 督办单 number, ``督办〔2026〕3号`` (per plan and year, in the
  ``supervision_notices`` table): the first printing of the year allocates the next number and
  keeps what the notice asked (``data``); printing the same task again in the same year gives the
  same number and the same content.  Numbers are allocated under a lock on the plan's row
  (PostgreSQL; SQLite writes one at a time), and a clash with the unique (plan, year, number)
  is retried, so two offices printing at once never share or skip a number.
- :func:`notice_pdf` prints it: the task book, what is asked and by when, and a 回执 to tear off.
- :func:`bulletin_pdf` prints an issued 督办通报 (``bulletins``, :mod:`duban.rollup.bulletins`)
  in the official document layout of GB/T 9704: A4, 版心 156 × 225 mm, the red 发文机关标志 and
  red line, 期号, the title in a bold serif (小标宋), the body in a serif at 16 pt (3号) with
  about 22 lines a page, page numbers "— 1 —", and the 印发 line at the end.

Rendering uses weasyprint with Noto Serif CJK (Debian ``fonts-noto-cjk``); the fonts are
embedded as subsets.  Templates live in ``duban/report_templates/``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from duban.db import session_scope
from duban.models import Bulletin, Department, Milestone, Person, Plan, Project, SupervisionNotice, System, Task, utcnow
from duban.report import environment, safe_file_name
from duban.rules.calendar import WorkCalendar
from duban.values import local_date
from duban.vocabulary import OPEN_STATES, BulletinKind, MilestoneState

REPLY_WORKDAYS = 3  # the 回执 is due this many working days after the notice is issued
ALLOCATION_TRIES = 5


class PaperError(ValueError):
    """A document that cannot be made (message in Chinese)."""


@dataclass(frozen=True)
class Document:
    """A rendered PDF and the name to save it under."""

    name: str  # 三全育人-督办通报-第3期.pdf
    pdf: bytes
    fallback: str = "duban.pdf"  # the ASCII name for a browser that does not read RFC 5987

    @property
    def content_disposition(self) -> str:
        """``attachment`` with the Chinese name (RFC 5987) and the ASCII fallback."""
        return f"attachment; filename=\"{self.fallback}\"; filename*=UTF-8''{quote(self.name, safe='')}"


def _ascii(text: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in str(text))[:60]


def notice_number(year: int, number: int) -> str:
    return f"督办〔{year}〕{number}号"


# -- 督办单 -------------------------------------------------------------------------------------------


def issue_notice(
    engine: Engine, plan_code: str, task_code: str, *, today: dt.date, cal: WorkCalendar, issued_by: str, now: dt.datetime | None = None
) -> SupervisionNotice:
    """The task's 督办单 of ``today``'s year: the one already issued, or a new one with the next
    number.  Raises :class:`PaperError` for an unknown plan or task."""
    now = now or utcnow()
    for attempt in range(ALLOCATION_TRIES):
        try:
            with session_scope(engine, wait=10.0) as session:
                plan = session.scalars(select(Plan).where(Plan.code == plan_code).with_for_update()).first()
                if plan is None:
                    raise PaperError(f"没有编号为“{plan_code}”的方案。")
                task = session.scalars(
                    select(Task).where(Task.plan_id == plan.id, Task.code == task_code, Task.archived_at.is_(None))
                ).first()
                if task is None:
                    raise PaperError(f"方案“{plan.name}”中没有编号为“{task_code}”的在办任务。")
                mine = select(SupervisionNotice).where(SupervisionNotice.task_id == task.id, SupervisionNotice.year == today.year)
                found = session.scalars(mine.order_by(SupervisionNotice.number)).first()
                if found is not None:
                    session.expunge(found)
                    return found
                last = session.scalar(
                    select(func.max(SupervisionNotice.number)).where(
                        SupervisionNotice.plan_id == plan.id, SupervisionNotice.year == today.year
                    )
                )
                notice = SupervisionNotice(
                    plan_id=plan.id, task_id=task.id, year=today.year, number=(last or 0) + 1, issued_at=now, issued_by=issued_by[:200]
                )
                notice.data = notice_content(session, plan, task, today=today, cal=cal, number=notice_number(today.year, notice.number))
                session.add(notice)
                session.flush()
                session.expunge(notice)
                return notice
        except IntegrityError:  # another printing took this number at the same moment: take the next
            if attempt == ALLOCATION_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def notice_content(session, plan: Plan, task: Task, *, today: dt.date, cal: WorkCalendar, number: str) -> dict[str, Any]:
    """What the 督办单 says, as data (kept with the notice: a reprint says the same)."""
    project, system = session.execute(
        select(Project.name, System.name).join(System, System.id == Project.system_id).where(Project.id == task.project_id)
    ).one()
    dept = session.get(Department, task.lead_department_id) if task.lead_department_id else None
    owner = session.get(Person, task.owner_id)
    sup_id = task.supervisor_id or (dept.supervisor_id if dept else None)
    supervisor = session.get(Person, sup_id) if sup_id else None
    steps = session.scalars(
        select(Milestone).where(Milestone.task_id == task.id, Milestone.status != MilestoneState.ARCHIVED).order_by(Milestone.seq)
    ).all()
    roadmap, asks = [], []
    for m in steps:
        name = m.title or "全部完成"
        late = cal.workdays_between(m.due_date, today) if m.status in OPEN_STATES and m.due_date < today else 0
        roadmap.append({"step": name, "due": m.due_date.isoformat(), "state": MilestoneState.label_of(m.status), "late": late})
        if late > 0:
            asks.append(f"节点「{name}」应于 {_day(m.due_date)}完成，已逾期 {late} 个工作日，请抓紧办理。")
        elif m.status in OPEN_STATES and not asks and m.due_date >= today:
            asks.append(f"节点「{name}」应于 {_day(m.due_date)}完成，请按时推进。")
    if task.acknowledged_at is None:
        asks.insert(0, "本任务尚未签收，请即签收。")
    reply_by = cal.add_workdays(today, REPLY_WORKDAYS)
    office = f"{plan.organization}领导小组办公室" if plan.organization else "领导小组办公室"
    return {
        "number": number,
        "plan": plan.code,
        "plan_name": plan.name,
        "office": office,
        "issued_on": today.isoformat(),
        "issued_text": _day(today),
        "reply_by": reply_by.isoformat(),
        "reply_by_text": _day(reply_by),
        "code": task.code,
        "title": task.title,
        "system": system,
        "project": project,
        "statement": task.statement,
        "done_criteria": task.done_criteria,
        "department": dept.name if dept else "",
        "partners": "、".join(task.partners or []),
        "owner": owner.name if owner else "",
        "supervisor": supervisor.name if supervisor else "",
        "acknowledged": str(local_date(task.acknowledged_at, dt.UTC) or ""),
        "roadmap": roadmap,
        "asks": asks or ["请对照任务书和时间表，按期推进并及时反馈进展。"],
    }


def notice_pdf(notice: SupervisionNotice) -> Document:
    data = notice.data
    html = environment().get_template("notice.html.j2").render(n=data)
    name = safe_file_name(f"{data['plan_name']}-督办单-{notice.year}年第{notice.number}号-{data['code']}") + ".pdf"
    return Document(name, render_pdf(html), f"duban-notice-{notice.year}-{notice.number}-{_ascii(data['code'])}.pdf")


# -- 督办通报 -------------------------------------------------------------------------------------------


def find_bulletin(engine: Engine, plan_code: str, *, kind: str | None = None, number: int | None = None) -> tuple[Plan, Bulletin]:
    """A plan's issued bulletin: ``kind`` and ``number``, or the latest issued (of ``kind``)."""
    with session_scope(engine, readonly=True) as session:
        plan = session.scalars(select(Plan).where(Plan.code == plan_code)).first()
        if plan is None:
            raise PaperError(f"没有编号为“{plan_code}”的方案。")
        q = select(Bulletin).where(Bulletin.plan_id == plan.id)
        if kind is not None:
            q = q.where(Bulletin.kind == kind)
        if number is not None:
            q = q.where(Bulletin.number == number)
        found = session.scalars(q.order_by(Bulletin.issued_on.desc(), Bulletin.id.desc()).limit(1)).first()
        if found is None:
            which = f"第 {number} 期" if number is not None else ""
            raise PaperError(
                f"方案“{plan.name}”尚未印发{which}督办通报。通报按方案设置每周或每月自动印发，也可由办公室运行 duban notify bulletin 印发。"
            )
        session.expunge_all()
    return plan, found


def bulletin_pdf(plan: Plan, bulletin: Bulletin) -> Document:
    data = dict(bulletin.data)
    figures = dict(data.get("figures") or {})
    if figures and "open_tasks" not in figures:  # issued before the figure was kept
        figures["open_tasks"] = int(figures["tasks"]) - int(figures["done_tasks"])
    office = f"{plan.organization}领导小组办公室" if plan.organization else "领导小组办公室"
    kind = BulletinKind(bulletin.kind)
    html = (
        environment()
        .get_template("bulletin_paper.html.j2")
        .render(
            b=data,
            f=figures,
            plan=plan,
            office=office,
            number=bulletin.number,
            kind_label=kind.label,
            issued_text=_day(bulletin.issued_on),
            as_of_text=_day(dt.date.fromisoformat(figures["as_of"])) if figures.get("as_of") else "",
        )
    )
    which = f"第{bulletin.number}期" if kind == BulletinKind.WEEK else f"{kind.label}第{bulletin.number}期"
    name = safe_file_name(f"{plan.name}-督办通报-{which}") + ".pdf"
    return Document(name, render_pdf(html), f"duban-bulletin-{_ascii(plan.code)}-{kind}-{bulletin.number}.pdf")


# -- rendering --------------------------------------------------------------------------------------------


def render_pdf(html: str) -> bytes:
    """HTML (with its own @page rules) as PDF bytes; the fonts it uses are embedded as subsets."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # imported on first use: pango loads with it

    return HTML(string=html).write_pdf()


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"
