"""Reviews (督查) as store functions: the flow (flows/review.py), the web pages and the CLI call these.

A review asks every owner in a scope (a plan, a system, a lead department, a supervising leader's
area, or a list of tasks) to report, per task, what was done, the evidence, the problems and the
next steps by a reply-by date — the way a 推进会 has each lead department report.  Then the office
gives a verdict per task (达标 / 基本达标 / 需整改; 需整改 opens a follow-up milestone with an owner
and a date) and the review report (HTML + XLSX) goes to the leading group and the office.

Life of a review::

    open (requests out) --everyone answered, or the reply-by date passed--> waiting_verdicts
    waiting_verdicts --every task judged--> closed (report written, sent)
    open / waiting_verdicts --cancel--> cancelled

All state lives here, in the store; every step is idempotent (ledger keys, status checks under a
row lock), so whoever advances a review — its Prefect flow run after a resume, the daily sweep, a
web answer, the CLI — may do so again without repeating anything.  Functions that take a session
never commit (the caller owns the transaction); those that take an engine run their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.models import (
    ARCHIVED,
    ASSIGNED,
    IN_PROGRESS,
    ITEM_ANSWERED,
    ITEM_JUDGED,
    ITEM_REQUESTED,
    PENDING,
    REVIEW_CANCELLED,
    REVIEW_CLOSED,
    REVIEW_OPEN,
    REVIEW_WAITING,
    SCOPE_KINDS,
    VERDICT_FIX,
    VERDICTS,
    Department,
    Event,
    Evidence,
    Link,
    Milestone,
    Notification,
    Person,
    Plan,
    PlanRole,
    Project,
    Review,
    ReviewItem,
    System,
    Task,
    utcnow,
)
from duban.rules.reviews import (
    REVIEW_CANCELLED_NOTICE,
    REVIEW_FOLLOW_UP,
    REVIEW_REPORT,
    REVIEW_REQUEST,
    REVIEW_VERDICTS,
    ReviewItemView,
    answers_closed,
    decide_item,
)

log = logging.getLogger("duban.reviews")

# event kinds (the task's audit trail)
REVIEW_ANSWERED = "review_answered"
REVIEW_JUDGED = "review_judged"
MAX_TEXT = 5000


class ReviewError(ValueError):
    """A review action that cannot be done; the message (Chinese) says why and what to do."""


def _text(value: str | None, *, what: str, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = (value or "").replace("\r\n", "\n").strip()
    if required and not value:
        raise ReviewError(f"请填写{what}。")
    if len(value) > limit:
        raise ReviewError(f"{what}不能超过 {limit} 个字（现有 {len(value)} 个字），请精简后再提交。")
    return value


# ---------------------------------------------------------------------------------------------
# Scope and start


def scope_tasks(session: Session, plan: Plan, kind: str, values: list[str]) -> list[Task]:
    """The live tasks of ``plan`` in a scope, in plan order; unknown names are a ReviewError."""
    if kind not in SCOPE_KINDS:
        raise ReviewError(f"督查范围“{kind}”不正确，可选：" + "、".join(f"{k}（{v}）" for k, v in SCOPE_KINDS.items()))
    values = [v.strip() for v in values if v and v.strip()]
    if kind != "plan" and not values:
        raise ReviewError(f"请指定{SCOPE_KINDS[kind]}。")
    q = (select(Task).join(Project, Project.id == Task.project_id).join(System, System.id == Project.system_id)
         .where(Task.plan_id == plan.id, Task.archived_at.is_(None)).order_by(System.position, Project.position, Task.position, Task.code))

    def known(names) -> str:
        return "、".join(names) or "（暂无）"

    if kind == "system":
        systems = session.execute(select(System.id, System.code, System.name).where(System.plan_id == plan.id, System.archived_at.is_(None))).all()
        ids = []
        for v in values:
            match = [s.id for s in systems if v in (s.name, s.code)]
            if not match:
                raise ReviewError(f"方案中没有名为“{v}”的育人体系。已有：{known(s.name for s in systems)}")
            ids += match
        q = q.where(System.id.in_(ids))
    elif kind == "department":
        depts = session.execute(select(Department.id, Department.name).where(Department.plan_id == plan.id)).all()
        ids = []
        for v in values:
            match = [d.id for d in depts if d.name == v]
            if not match:
                raise ReviewError(f"方案中没有名为“{v}”的牵头单位。已有：{known(d.name for d in depts)}")
            ids += match
        q = q.where(Task.lead_department_id.in_(ids))
    elif kind == "supervisor":
        people = dict(session.execute(select(Person.name, Person.id).where(Person.plan_id == plan.id)).all())
        ids = []
        for v in values:
            if v not in people:
                raise ReviewError(f"方案中没有名为“{v}”的人员（分管校领导）。")
            ids.append(people[v])
        # the task's own supervising leader, else its lead department's
        dept_ids = list(session.scalars(select(Department.id).where(Department.plan_id == plan.id, Department.supervisor_id.in_(ids))))
        from sqlalchemy import and_, or_

        q = q.where(or_(Task.supervisor_id.in_(ids), and_(Task.supervisor_id.is_(None), Task.lead_department_id.in_(dept_ids or [-1]))))
    elif kind == "tasks":
        codes = list(dict.fromkeys(values))
        found = set(session.scalars(select(Task.code).where(Task.plan_id == plan.id, Task.code.in_(codes), Task.archived_at.is_(None))))
        missing = [c for c in codes if c not in found]
        if missing:
            raise ReviewError(f"方案中没有编号为 {'、'.join(missing)} 的任务（或已归档）。")
        q = q.where(Task.code.in_(codes))
    tasks = list(session.scalars(q))
    if not tasks:
        raise ReviewError(f"该范围（{SCOPE_KINDS[kind]}：{'、'.join(values) or plan.name}）内没有正在执行的任务。")
    return tasks


def default_title(kind: str, values: list[str]) -> str:
    if kind == "plan":
        return "全面督查"
    return f"{'、'.join(values)}专项督查" if kind != "tasks" else f"任务 {'、'.join(values)} 专项督查"


def plan_by_code(session: Session, code: str | None) -> Plan:
    if code is None:
        plans = session.scalars(select(Plan).order_by(Plan.code)).all()
        if len(plans) == 1:
            return plans[0]
        raise ReviewError("请用 --plan 指定方案编号。已有方案：" + ("、".join(p.code for p in plans) or "（暂无）"))
    plan = session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无）"
        raise ReviewError(f"没有编号为“{code}”的方案。已有方案：{known}")
    return plan


def create(session: Session, *, plan_code: str | None, scope_kind: str, scope_values: list[str], reply_by: dt.date, ask: str,
           today: dt.date, started_by: str, title: str | None = None, flow_run_id: str | None = None,
           now: dt.datetime | None = None) -> Review:
    """A new review over the tasks of a scope (one item per task, owner = the task's owner now).

    With ``flow_run_id``, an existing review of that flow run is returned instead (a flow run
    re-executed after a resume starts here again)."""
    if flow_run_id:
        existing = session.scalar(select(Review).where(Review.flow_run_id == flow_run_id))
        if existing is not None:
            return existing
    plan = plan_by_code(session, plan_code)
    if reply_by <= today:
        raise ReviewError(f"填报截止日期 {reply_by.isoformat()} 应晚于今天（{today.isoformat()}）。")
    ask = _text(ask, what="督查要求", limit=2000)
    tasks = scope_tasks(session, plan, scope_kind, list(scope_values))
    review = Review(plan_id=plan.id, title=_text(title or default_title(scope_kind, list(scope_values)), what="督查名称", limit=300),
                    ask=ask, scope_kind=scope_kind, scope_values=list(scope_values), reply_by=reply_by, started_on=today,
                    status=REVIEW_OPEN, started_by=started_by[:200], created_at=now or utcnow(), flow_run_id=flow_run_id,
                    cancel_reason="", wake_round=0)
    session.add(review)
    session.flush()
    session.add_all([ReviewItem(review_id=review.id, task_id=t.id, owner_id=t.owner_id, status=ITEM_REQUESTED, done="", problems="",
                                next_steps="", verdict_note="") for t in tasks])
    session.flush()
    return review


def attach_flow_run(engine: Engine, review_id: int, flow_run_id: str) -> None:
    with session_scope(engine) as s:
        s.execute(update(Review).where(Review.id == review_id).values(flow_run_id=flow_run_id))


# ---------------------------------------------------------------------------------------------
# Ledger items (messages): they land in each person's normal digest


def _ledger(session: Session, *, key: str, review: Review, recipient: int, kind: str, today: dt.date, now: dt.datetime,
            task: Task | None = None, milestone_id: int | None = None, due: dt.date | None = None, data: dict[str, Any] | None = None) -> bool:
    if session.scalar(select(Notification.id).where(Notification.key == key)) is not None:
        return False
    session.add(Notification(
        key=key, plan_id=review.plan_id, task_id=task.id if task else None, milestone_id=milestone_id, recipient_id=recipient,
        kind=kind, level=0, due_date=due if due is not None else review.reply_by, days=0, decided_on=today, created_at=now, status=PENDING,
        data={"code": task.code if task else "", "title": task.title if task else review.title, "review": review.id,
              "review_title": review.title, "reply_by": review.reply_by.isoformat(), **(data or {})},
    ))
    return True


def office_members(session: Session, plan_id: int) -> list[int]:
    """Who judges a review: the office (the leading group when the plan has no office)."""
    from duban.links import reviewers

    return reviewers(session, plan_id)


def report_readers(session: Session, plan_id: int) -> list[int]:
    """Who receives the report: the leading group and the office (active people)."""
    rows = session.execute(
        select(PlanRole.person_id).join(Person, Person.id == PlanRole.person_id)
        .where(PlanRole.plan_id == plan_id, PlanRole.role.in_(("leading_group", "office")), Person.active.is_(True))
        .order_by(PlanRole.role, PlanRole.position)
    ).scalars()
    return list(dict.fromkeys(rows))


def send_requests(session: Session, review: Review, *, today: dt.date, now: dt.datetime) -> set[int]:
    """One request per item to the owner asked (idempotent: the ledger keeps each key once)."""
    told: set[int] = set()
    rows = session.execute(select(ReviewItem, Task).join(Task, Task.id == ReviewItem.task_id)
                           .where(ReviewItem.review_id == review.id).order_by(ReviewItem.id)).all()
    for item, task in rows:
        if _ledger(session, key=f"{REVIEW_REQUEST}:rv{review.id}:i{item.id}:p{item.owner_id}", review=review, recipient=item.owner_id,
                   kind=REVIEW_REQUEST, today=today, now=now, task=task, data={"item": item.id, "ask": review.ask}):
            told.add(item.owner_id)
    if review.requests_sent_at is None:
        review.requests_sent_at = now
    return told


def _close_answers(session: Session, review: Review, *, today: dt.date, now: dt.datetime) -> set[int]:
    """open → waiting_verdicts: the office is asked for the verdicts."""
    review.status = REVIEW_WAITING
    review.answers_closed_on = today
    told = set()
    counts = _counts(session, review.id)
    for member in office_members(session, review.plan_id):
        if _ledger(session, key=f"{REVIEW_VERDICTS}:rv{review.id}:p{member}", review=review, recipient=member, kind=REVIEW_VERDICTS,
                   today=today, now=now, data={"items": counts["items"], "answered": counts["answered"]}):
            told.add(member)
    return told


def _counts(session: Session, review_id: int) -> dict[str, int]:
    rows = session.execute(select(ReviewItem.status, ReviewItem.answered_at.is_not(None), func.count())
                           .where(ReviewItem.review_id == review_id).group_by(ReviewItem.status, ReviewItem.answered_at.is_not(None))).all()
    out = {"items": 0, "answered": 0, "judged": 0}
    for status, answered, n in rows:
        out["items"] += n
        out["answered"] += n if answered else 0
        out["judged"] += n if status == ITEM_JUDGED else 0
    return out


# ---------------------------------------------------------------------------------------------
# Answers (the owner, from the signed link)


@dataclass
class Outcome:
    message: str
    notify: set[int] = field(default_factory=set)
    wake: bool = False  # the review moved on: wake its flow run (or advance it in-process)


def record_answer(session: Session, item: ReviewItem, *, person: Person, done: str, problems: str, next_steps: str,
                  urls: list[str], files: list[Any], now: dt.datetime, today: dt.date, channel: str = "link",
                  origin: dict[str, Any] | None = None) -> Outcome:
    """The owner's answer for one task (again, to amend it, until the task is judged)."""
    review = session.get(Review, item.review_id, with_for_update=True)
    if review.status in (REVIEW_CLOSED, REVIEW_CANCELLED):
        raise ReviewError("本次督查已结束（已完成或已撤销），无需再填报。")
    if item.status == ITEM_JUDGED:
        raise ReviewError("该任务的督查已评定，不能再修改填报内容。如需补充，请联系领导小组办公室。")
    if item.owner_id != person.id:
        raise ReviewError("该督查事项不由您填报。")
    done = _text(done, what="已完成工作", required=True)
    problems = _text(problems, what="存在问题")
    next_steps = _text(next_steps, what="下一步计划", required=True)
    amended = item.answered_at is not None
    item.done, item.problems, item.next_steps = done, problems, next_steps
    item.answered_at, item.answered_by, item.status = now, person.name, ITEM_ANSWERED
    task = session.get(Task, item.task_id)
    if task.owner_id == person.id:
        from duban.actions import _acknowledge

        _acknowledge(session, task, now)  # answering counts as 签收, like any first action on the task
    ev = Event(plan_id=review.plan_id, task_id=task.id, at=now, actor=person.name, channel=channel, kind=REVIEW_ANSWERED,
               data={"review": review.id, "item": item.id, "review_title": review.title, "amended": amended, "late": today > review.reply_by,
                     "done": done[:500], "problems": problems[:500], "next_steps": next_steps[:500], **(origin or {})})
    session.add(ev)
    session.flush()
    common = {"plan_id": review.plan_id, "task_id": task.id, "event_id": ev.id, "review_item_id": item.id, "person_id": person.id,
              "created_at": now}
    for url in urls:
        session.add(Evidence(kind="url", url=url, **common))
    for f in files:
        session.add(Evidence(kind="file", filename=f.filename, stored_name=f.stored_name, content_type=f.content_type, size=f.size,
                             sha256=f.sha256, **common))
    session.flush()
    notify: set[int] = set()
    wake = False
    if review.status == REVIEW_OPEN and _counts(session, review.id)["answered"] == _counts(session, review.id)["items"]:
        notify |= _close_answers(session, review, today=today, now=now)
        wake = True
    msg = "已修改您的督查填报内容。" if amended else "已收到您的督查填报，感谢您的配合。"
    if today > review.reply_by:
        msg += f"（填报截止日期为 {review.reply_by.isoformat()}，本次为逾期填报。）"
    return Outcome(msg + "评定前如需补充，可再次打开此链接修改。", notify, wake)


# ---------------------------------------------------------------------------------------------
# Daily: reminders and escalations of missing answers, and the reply-by date


@dataclass
class TickResult:
    decided: int = 0
    new: int = 0
    changed: list[int] = field(default_factory=list)  # reviews that moved to waiting_verdicts today
    recipients: set[int] = field(default_factory=set)


def item_views(session: Session, *, tz, plan_code: str | None = None, review_id: int | None = None):
    """(ReviewItemView, policy) of every unanswered item of the open or waiting reviews."""
    from duban.sweep import load

    q = (select(ReviewItem.id, ReviewItem.review_id, ReviewItem.task_id, ReviewItem.owner_id, ReviewItem.answered_at,
                Review.title, Review.reply_by, Review.started_on, Review.plan_id, Plan.code)
         .join(Review, Review.id == ReviewItem.review_id).join(Plan, Plan.id == Review.plan_id)
         .where(Review.status.in_((REVIEW_OPEN, REVIEW_WAITING)), ReviewItem.answered_at.is_(None)))
    if plan_code is not None:
        q = q.where(Plan.code == plan_code)
    if review_id is not None:
        q = q.where(Review.id == review_id)
    rows = session.execute(q).all()
    out = []
    for code in sorted({r.code for r in rows}):
        tasks = {view.id: (view, policy) for view, policy in load(session, tz=tz, plan_code=code).tasks}
        plan_id = next(r.plan_id for r in rows if r.code == code)
        people = dict(session.execute(select(Person.id, Person.manager_id).where(Person.plan_id == plan_id)).all())
        for r in rows:
            if r.code != code or r.task_id not in tasks:
                continue
            view, policy = tasks[r.task_id]
            task_view = dataclasses.replace(view, owner_id=r.owner_id, owner_manager_id=people.get(r.owner_id), milestones=())
            out.append((ReviewItemView(item_id=r.id, review_id=r.review_id, review_title=r.title, task=task_view,
                                       requested_on=r.started_on, reply_by=r.reply_by), policy))
    return out


def tick(engine: Engine, *, today: dt.date, cal, tz, plan_code: str | None = None, now: dt.datetime | None = None) -> TickResult:
    """Decide today's review reminders and escalations, and close the answers of reviews whose
    reply-by date passed (the office is then asked for verdicts).  Idempotent; the daily sweep
    runs it."""
    from duban.sweep import _existing_keys, _insert_ignore

    now = now or utcnow()
    result = TickResult()
    with session_scope(engine) as session:
        views = item_views(session, tz=tz, plan_code=plan_code)
        people = dict(session.execute(select(Person.id, Person.name)).all())
        decisions = [d for view, policy in views for d in decide_item(view, policy, cal, today)]
        owners = {v.item_id: v.task.owner_id for v, _ in views}
        existing = _existing_keys(session, [d.key for d in decisions])
        rows = [
            {"key": d.key, "plan_id": view_plan, "task_id": d.task_id, "milestone_id": None, "recipient_id": d.recipient_id,
             "kind": d.kind, "level": d.level, "due_date": d.due, "days": d.days, "decided_on": today, "status": PENDING,
             "data": {**d.data, "owner": people.get(owners.get(d.data["item"]), "")}, "created_at": now, "digest_id": None}
            for d in decisions if d.key not in existing
            for view_plan in [_plan_of(views, d.data["item"])]
        ]
        result.decided = len(decisions)
        result.new = _insert_ignore(session, rows)
        result.recipients |= {r["recipient_id"] for r in rows}
        q = select(Review).where(Review.status == REVIEW_OPEN).with_for_update()
        if plan_code is not None:
            q = q.join(Plan, Plan.id == Review.plan_id).where(Plan.code == plan_code)
        for review in session.scalars(q).all():
            counts = _counts(session, review.id)
            if answers_closed(today=today, reply_by=review.reply_by, unanswered=counts["items"] - counts["answered"]):
                result.recipients |= _close_answers(session, review, today=today, now=now)
                result.changed.append(review.id)
    return result


def _plan_of(views, item_id: int) -> int:
    for v, _ in views:
        if v.item_id == item_id:
            return v.task.plan_id
    raise KeyError(item_id)


# ---------------------------------------------------------------------------------------------
# Verdicts (the office: review page, CLI, or Prefect flow input)


@dataclass
class Verdict:
    task_code: str
    verdict: str
    note: str = ""
    follow_up_title: str = ""
    follow_up_due: dt.date | None = None
    follow_up_owner: str = ""  # a person's name; the task's owner when empty


def give_verdict(session: Session, review: Review, v: Verdict, *, actor: str, now: dt.datetime, today: dt.date,
                 channel: str = "cli") -> Outcome:
    """Judge one task of ``review`` (again, to change it, until the review is closed)."""
    if review.status == REVIEW_CANCELLED:
        raise ReviewError("本次督查已撤销，不能评定。")
    if review.status == REVIEW_CLOSED:
        raise ReviewError("本次督查已完成并已生成报告，评定不能再修改。")
    row = session.execute(select(ReviewItem, Task).join(Task, Task.id == ReviewItem.task_id)
                          .where(ReviewItem.review_id == review.id, Task.code == v.task_code)).first()
    if row is None:
        raise ReviewError(f"本次督查中没有编号为 {v.task_code} 的任务。")
    item, task = row
    if v.verdict not in VERDICTS:
        raise ReviewError(f"评定结果“{v.verdict}”不正确，应为：{'、'.join(VERDICTS)}。")
    if review.status == REVIEW_OPEN and item.answered_at is None:
        raise ReviewError(f"任务 {task.code} 尚未填报；请在责任人填报后，或填报截止（{review.reply_by.isoformat()}）后再评定。")
    note = _text(v.note, what="评定意见", required=v.verdict == VERDICT_FIX, limit=2000)
    notify: set[int] = set()
    old_ms = session.get(Milestone, item.follow_up_milestone_id) if item.follow_up_milestone_id else None
    if v.verdict == VERDICT_FIX:
        title = _text(v.follow_up_title, what="整改事项（整改里程碑名称）", required=True, limit=300)
        if v.follow_up_due is None or v.follow_up_due <= today:
            raise ReviewError(f"请填写晚于今天（{today.isoformat()}）的整改完成日期。")
        owner_id = task.owner_id
        if v.follow_up_owner.strip():
            owner_id = session.scalar(select(Person.id).where(Person.plan_id == review.plan_id, Person.name == v.follow_up_owner.strip()))
            if owner_id is None:
                raise ReviewError(f"方案中没有名为“{v.follow_up_owner.strip()}”的人员，无法指定为整改责任人。")
        full_title = f"督查整改：{title}"
        if old_ms is not None and old_ms.status in (ASSIGNED, IN_PROGRESS):
            if old_ms.due_date != v.follow_up_due:
                old_ms.due_version += 1
            old_ms.title, old_ms.due_date, old_ms.baseline_due_date = full_title, v.follow_up_due, v.follow_up_due
            ms = old_ms
        else:
            seq = (session.scalar(select(func.max(Milestone.seq)).where(Milestone.task_id == task.id)) or 0) + 1
            ms = Milestone(task_id=task.id, seq=seq, title=full_title, due_date=v.follow_up_due, baseline_due_date=v.follow_up_due,
                           due_text=f"督查整改（{review.title}）", due_version=1, is_final=False,
                           status=IN_PROGRESS if task.acknowledged_at is not None else ASSIGNED, assigned_at=now,
                           acknowledged_at=now if task.acknowledged_at is not None else None)
            session.add(ms)
            session.flush()
        item.follow_up_milestone_id, item.follow_up_owner_id = ms.id, owner_id
        if _ledger(session, key=f"{REVIEW_FOLLOW_UP}:rv{review.id}:i{item.id}:m{ms.id}v{ms.due_version}:p{owner_id}", review=review,
                   recipient=owner_id, kind=REVIEW_FOLLOW_UP, today=today, now=now, task=task, milestone_id=ms.id, due=ms.due_date,
                   data={"item": item.id, "milestone": ms.title, "note": note, "task_owner": owner_id == task.owner_id}):
            notify.add(owner_id)
    else:
        if old_ms is not None and old_ms.status in (ASSIGNED, IN_PROGRESS):
            old_ms.status, old_ms.archived_at = ARCHIVED, now  # the verdict changed: no 整改 any more
        item.follow_up_milestone_id, item.follow_up_owner_id = None, None
    item.verdict, item.verdict_note, item.verdict_by, item.verdict_at, item.status = v.verdict, note, actor[:200], now, ITEM_JUDGED
    session.add(Event(plan_id=review.plan_id, task_id=task.id, milestone_id=item.follow_up_milestone_id, at=now, actor=actor[:200],
                      channel=channel, kind=REVIEW_JUDGED,
                      data={"review": review.id, "item": item.id, "review_title": review.title, "verdict": v.verdict, "note": note,
                            "follow_up": item.follow_up_milestone_id}))
    session.flush()
    counts = _counts(session, review.id)
    all_judged = counts["judged"] == counts["items"]
    msg = f"任务 {task.code} 评定为「{v.verdict}」。"
    if all_judged:
        msg += "本次督查的全部任务均已评定，将生成督查报告并报送领导小组。"
    return Outcome(msg, notify, wake=all_judged and review.status == REVIEW_WAITING)


# ---------------------------------------------------------------------------------------------
# Advancing a review (the flow's step; also run in-process when no flow run can be resumed)


@dataclass
class Advance:
    status: str
    recipients: set[int] = field(default_factory=set)
    report: dict[str, str] = field(default_factory=dict)


def advance(engine: Engine, review_id: int, *, today: dt.date, reports_dir: Path, now: dt.datetime | None = None) -> Advance:
    """Do whatever the review is ready for, once: send the requests, close the answers (everyone
    answered or the reply-by date passed), and when every task is judged write the report, send it
    and close the review."""
    now = now or utcnow()
    with session_scope(engine) as session:
        review = session.get(Review, review_id, with_for_update=True)
        if review is None:
            raise ReviewError(f"没有编号为 {review_id} 的督查。")
        result = Advance(review.status)
        if review.status in (REVIEW_CLOSED, REVIEW_CANCELLED):
            return result
        result.recipients |= send_requests(session, review, today=today, now=now)
        counts = _counts(session, review.id)
        if review.status == REVIEW_OPEN and answers_closed(today=today, reply_by=review.reply_by,
                                                           unanswered=counts["items"] - counts["answered"]):
            result.recipients |= _close_answers(session, review, today=today, now=now)
        if review.status == REVIEW_WAITING and counts["judged"] == counts["items"]:
            result.report = _finish(session, review, today=today, now=now, reports_dir=reports_dir)
            result.recipients |= set(report_readers(session, review.plan_id))
        result.status = review.status
        return result


def _finish(session: Session, review: Review, *, today: dt.date, now: dt.datetime, reports_dir: Path) -> dict[str, str]:
    from duban.review_report import write_report

    data = report_data(session, review, generated_at=now)
    files = write_report(data, reports_dir / "reviews" / str(review.id))
    review.report_html, review.report_xlsx = str(files.html), str(files.xlsx)
    review.status, review.closed_at = REVIEW_CLOSED, now
    for person in report_readers(session, review.plan_id):
        _ledger(session, key=f"{REVIEW_REPORT}:rv{review.id}:p{person}", review=review, recipient=person, kind=REVIEW_REPORT,
                today=today, now=now, due=today,
                data={"items": data["counts"]["items"], "answered": data["counts"]["answered"],
                      "verdicts": data["counts"]["verdicts"], "follow_ups": len(data["follow_ups"]),
                      "non_responders": len(data["non_responders"])})
    # a link that asked for an answer has nothing left to do
    session.execute(update(Link).where(Link.review_id == review.id, Link.void_at.is_(None), Link.action == "review_answer")
                    .values(void_at=now, void_reason="督查已完成"))
    session.execute(update(Link).where(Link.review_item_id.in_(select(ReviewItem.id).where(ReviewItem.review_id == review.id)),
                                       Link.void_at.is_(None), Link.action == "review_answer").values(void_at=now, void_reason="督查已完成"))
    return {"html": str(files.html), "xlsx": str(files.xlsx)}


def cancel(session: Session, review_id: int, *, actor: str, reason: str, now: dt.datetime, today: dt.date) -> Outcome:
    review = session.get(Review, review_id, with_for_update=True)
    if review is None:
        raise ReviewError(f"没有编号为 {review_id} 的督查。")
    if review.status in (REVIEW_CLOSED, REVIEW_CANCELLED):
        raise ReviewError(f"督查 {review_id} 已{'完成' if review.status == REVIEW_CLOSED else '撤销'}，不能撤销。")
    review.status, review.cancelled_by, review.cancel_reason, review.closed_at = REVIEW_CANCELLED, actor[:200], reason.strip(), now
    notify = set()
    for item, task in session.execute(select(ReviewItem, Task).join(Task, Task.id == ReviewItem.task_id)
                                      .where(ReviewItem.review_id == review.id, ReviewItem.answered_at.is_(None))).all():
        if _ledger(session, key=f"{REVIEW_CANCELLED_NOTICE}:rv{review.id}:i{item.id}", review=review, recipient=item.owner_id,
                   kind=REVIEW_CANCELLED_NOTICE, today=today, now=now, task=task, data={"item": item.id, "reason": review.cancel_reason}):
            notify.add(item.owner_id)
    item_ids = select(ReviewItem.id).where(ReviewItem.review_id == review.id)
    session.execute(update(Link).where(Link.void_at.is_(None), (Link.review_id == review.id) | Link.review_item_id.in_(item_ids))
                    .values(void_at=now, void_reason="督查已撤销"))
    # pending reminders that were not sent yet are dropped
    session.execute(update(Notification).where(Notification.status == PENDING, Notification.digest_id.is_(None),
                                               Notification.kind.in_(("review_reminder", "review_overdue", "review_escalation", REVIEW_REQUEST)),
                                               Notification.task_id.in_(select(ReviewItem.task_id).where(ReviewItem.review_id == review.id)))
                    .values(status="cancelled"))
    return Outcome(f"督查 {review.id}（{review.title}）已撤销。", notify, wake=True)


# ---------------------------------------------------------------------------------------------
# Reading


def report_data(session: Session, review: Review, *, generated_at: dt.datetime | None = None, tz=None) -> dict[str, Any]:
    """Everything the report shows, as plain data (duban.review_report renders it)."""
    from duban.links import local_time

    plan = session.get(Plan, review.plan_id)
    rows = session.execute(
        select(ReviewItem, Task, Person.name.label("owner"), Department.name.label("dept"), System.name.label("system"))
        .join(Task, Task.id == ReviewItem.task_id).join(Person, Person.id == ReviewItem.owner_id)
        .join(Project, Project.id == Task.project_id).join(System, System.id == Project.system_id)
        .outerjoin(Department, Department.id == Task.lead_department_id)
        .where(ReviewItem.review_id == review.id).order_by(System.position, Project.position, Task.position, Task.code)
    ).all()
    evidence: dict[int, list[str]] = defaultdict(list)
    for e in session.scalars(select(Evidence).where(Evidence.review_item_id.in_([r[0].id for r in rows] or [-1])).order_by(Evidence.id)):
        evidence[e.review_item_id].append(e.url if e.kind == "url" else f"附件：{e.filename}")
    names = dict(session.execute(select(Person.id, Person.name).where(Person.plan_id == review.plan_id)).all())
    milestones = {m.id: m for m in session.scalars(select(Milestone).where(
        Milestone.id.in_([r[0].follow_up_milestone_id for r in rows if r[0].follow_up_milestone_id] or [-1])))}
    items, non_responders, follow_ups = [], [], []
    verdict_counts = {v: 0 for v in VERDICTS}
    for item, task, owner, dept, system in rows:
        late = item.answered_at is not None and _local_day(item.answered_at, tz) > review.reply_by
        entry = {
            "code": task.code, "title": task.title, "system": system, "department": dept or "", "owner": owner,
            "answered": item.answered_at is not None, "answered_at": local_time(item.answered_at, tz), "late": late,
            "done": item.done, "evidence": evidence.get(item.id, []), "problems": item.problems, "next_steps": item.next_steps,
            "verdict": item.verdict or "", "verdict_note": item.verdict_note, "verdict_by": item.verdict_by or "",
        }
        items.append(entry)
        if item.verdict:
            verdict_counts[item.verdict] += 1
        if item.answered_at is None:
            non_responders.append({"code": task.code, "title": task.title, "department": dept or "", "owner": owner})
        if item.follow_up_milestone_id:
            m = milestones[item.follow_up_milestone_id]
            follow_ups.append({"code": task.code, "title": task.title, "milestone": m.title, "owner": names.get(item.follow_up_owner_id, ""),
                               "due": m.due_date.isoformat(), "note": item.verdict_note})
    scope = SCOPE_KINDS.get(review.scope_kind, review.scope_kind) + ("：" + "、".join(review.scope_values) if review.scope_values else "")
    return {
        "id": review.id, "title": review.title, "plan": plan.name, "plan_code": plan.code, "organization": plan.organization,
        "ask": review.ask, "scope": scope, "started_on": review.started_on.isoformat(), "reply_by": review.reply_by.isoformat(),
        "started_by": review.started_by, "status": review.status,
        "generated_at": local_time(generated_at, tz) if generated_at else "",
        "counts": {"items": len(items), "answered": sum(1 for i in items if i["answered"]),
                   "late": sum(1 for i in items if i["late"]), "verdicts": verdict_counts},
        "items": items, "non_responders": non_responders, "follow_ups": follow_ups,
        "escalations": _escalations(session, review),
    }


def _escalations(session: Session, review: Review) -> list[dict[str, Any]]:
    """The 督办 sent about missing answers of this review (who was told, at which level)."""
    levels = {1: "部门负责人", 2: "分管校领导", 3: "领导小组办公室"}
    out = []
    for n, name in session.execute(select(Notification, Person.name).join(Person, Person.id == Notification.recipient_id)
                                   .where(Notification.kind == "review_escalation", Notification.plan_id == review.plan_id)
                                   .order_by(Notification.decided_on, Notification.level, Notification.id)):
        if (n.data or {}).get("review") == review.id:
            out.append({"code": n.data.get("code", ""), "owner": n.data.get("owner", ""), "level": levels.get(n.level, str(n.level)),
                        "to": name, "on": n.decided_on.isoformat()})
    return out


def _local_day(value: dt.datetime, tz) -> dt.date:
    from zoneinfo import ZoneInfo

    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(tz or ZoneInfo("Asia/Shanghai")).date()


def summaries(session: Session, *, plan_code: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    q = select(Review, Plan.code).join(Plan, Plan.id == Review.plan_id).order_by(Review.id.desc())
    if plan_code:
        q = q.where(Plan.code == plan_code)
    if status:
        q = q.where(Review.status == status)
    out = []
    for review, code in session.execute(q).all():
        counts = _counts(session, review.id)
        out.append({"id": review.id, "plan": code, "title": review.title, "status": review.status, "reply_by": review.reply_by.isoformat(),
                    "started_on": review.started_on.isoformat(), "started_by": review.started_by, **counts,
                    "flow_run_id": review.flow_run_id or ""})
    return out


_TASK_HISTORY = (
    select(Review.title, Review.status, Review.reply_by, ReviewItem.answered_at, ReviewItem.done, ReviewItem.problems,
           ReviewItem.next_steps, ReviewItem.verdict, ReviewItem.verdict_note, Milestone.title.label("ms_title"),
           Milestone.due_date.label("ms_due"))
    .join(Review, Review.id == ReviewItem.review_id)
    .outerjoin(Milestone, Milestone.id == ReviewItem.follow_up_milestone_id)
    .where(ReviewItem.task_id == bindparam("task_id"))
    .order_by(Review.id.desc())
)


def task_history(session: Session, task_id: int) -> list[dict[str, Any]]:
    """The reviews a task was part of, newest first (the task page's 督查记录): one statement,
    built once — the link pages show it on every view."""
    from duban.models import REVIEW_STATE_LABELS

    return [
        {"review": r.title, "status": REVIEW_STATE_LABELS.get(r.status, r.status), "reply_by": r.reply_by.isoformat(),
         "answered": r.answered_at is not None, "done": r.done, "problems": r.problems, "next_steps": r.next_steps,
         "verdict": r.verdict or "", "note": r.verdict_note,
         "follow_up": f"{r.ms_title}（{r.ms_due.isoformat()}）" if r.ms_title is not None else ""}
        for r in session.execute(_TASK_HISTORY, {"task_id": task_id})
    ]


# ---------------------------------------------------------------------------------------------
# Waking the flow run (duban.orchestration does, with Prefect) — or advancing in-process when there is none


def next_wake_round(engine: Engine, review_id: int) -> str | None:
    """Count one more wake-up of the review; the id of its flow run to wake, if it has one."""
    with session_scope(engine) as s:
        review = s.get(Review, review_id, with_for_update=True)
        if review is None or not review.flow_run_id:
            return None
        review.wake_round += 1
        return review.flow_run_id


def deliver(rt, recipients: set[int], today: dt.date) -> None:
    """Assemble and send what a step wrote to the ledger, for just those people."""
    if not recipients:
        return
    from duban import sweep

    sweep.assemble(rt.engine, today=today, links=rt.links(today), channel=rt.channel.name, template_dir=rt.settings.template_dir,
                   recipients=sorted(recipients))
    sweep.deliver(rt.engine, rt.channel, now=dt.datetime.now(dt.timezone.utc), recipients=sorted(recipients), **rt.deliver_options(today))


# ---------------------------------------------------------------------------------------------
# Starting a review: the one path of ``duban review start`` and the dashboard's 发起督查 form
# (through duban.orchestration.start_review, which hands it to the ``review`` deployment)


@dataclass
class Started:
    review_id: int
    title: str
    tasks: int
    reply_by: dt.date
    how: str  # "deployment": a flow run of the review deployment drives it | "inline": the sweep and the web do
    flow_run_id: str | None = None
    recipients: set[int] = field(default_factory=set)  # who has new ledger items (the caller delivers them)


def scope_choices(session: Session, plan: Plan) -> dict[str, list[str]]:
    """What a scope may name in ``plan`` (the dashboard's form): systems, lead departments,
    supervising leaders (of a department or of a task), and live task codes, in plan order."""
    systems = list(session.scalars(select(System.name).where(System.plan_id == plan.id, System.archived_at.is_(None))
                                   .order_by(System.position, System.code)))
    departments = list(session.scalars(select(Department.name).where(Department.plan_id == plan.id).order_by(Department.id)))
    # the leaders in the order of the departments they supervise, then those named only on a task
    sup_ids = list(session.scalars(select(Department.supervisor_id).where(Department.plan_id == plan.id, Department.supervisor_id.is_not(None))
                                   .order_by(Department.id)))
    sup_ids += list(session.scalars(select(Task.supervisor_id).where(Task.plan_id == plan.id, Task.archived_at.is_(None),
                                                                     Task.supervisor_id.is_not(None)).order_by(Task.id)))
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(sup_ids or [-1]))).all())
    supervisors = [names[i] for i in dict.fromkeys(sup_ids) if i in names]
    tasks = [t.code for t in session.scalars(
        select(Task).join(Project, Project.id == Task.project_id).join(System, System.id == Project.system_id)
        .where(Task.plan_id == plan.id, Task.archived_at.is_(None)).order_by(System.position, Project.position, Task.position, Task.code))]
    return {"system": systems, "department": departments, "supervisor": supervisors, "tasks": tasks}


def start(engine: Engine, *, plan_code: str | None, scope_kind: str, scope_values: list[str], reply_by: dt.date, ask: str,
          today: dt.date, started_by: str, reports_dir: Path, title: str | None = None,
          launch: Callable[[dict[str, Any]], str | None] | None = None) -> Started:
    """Start a review: check and create it (a ReviewError and nothing is written when the plan, the
    scope or the date is wrong), send the owners' requests to the ledger at once, and hand it to a
    flow run: ``launch(parameters)`` starts one of the ``review`` flow and returns its id, or None
    when there is nowhere to run it (duban.orchestration.run_review_deployment).

    The requests do not wait for a worker: they are in the ledger when this returns (the caller
    delivers them to ``recipients``); the flow run, started with the review's id, finds them sent
    and suspends until the review moves on.  Without a flow run the daily sweep, the web answers
    and the verdicts advance the review in-process (docs/reviews.md)."""
    with session_scope(engine) as s:
        review = create(s, plan_code=plan_code, scope_kind=scope_kind, scope_values=list(scope_values), reply_by=reply_by, ask=ask,
                        today=today, started_by=started_by, title=title)
        plan_code = s.get(Plan, review.plan_id).code
        started = Started(review.id, review.title, _counts(s, review.id)["items"], review.reply_by, "inline")
    started.recipients = advance(engine, started.review_id, today=today, reports_dir=reports_dir).recipients
    if launch is None:
        return started
    request = {"plan": plan_code, "scope": scope_kind, "values": list(scope_values), "reply_by": reply_by.isoformat(), "ask": ask,
               "title": started.title, "started_by": started_by}
    try:
        run_id = launch({"request": request, "today": today.isoformat(), "review_id": started.review_id})
    except Exception as err:  # noqa: BLE001 - the review is in the store and its requests are out: it goes on in-process
        log.warning("review %s: the review deployment could not be run (%s: %s); advancing in-process",
                    started.review_id, err.__class__.__name__, err)
        return started
    if run_id is None:
        return started
    attach_flow_run(engine, started.review_id, run_id)
    started.how, started.flow_run_id = "deployment", run_id
    return started
