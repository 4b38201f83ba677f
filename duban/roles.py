"""Who holds which role in a plan or a task, read from the store at the moment it matters.

A signed link is earned by a role: the office (领导小组办公室) reviews and judges, the leading
group (领导小组) and the office read review reports, and a department head, the owner's manager or
the supervising leader (分管校领导) is sent a task's read-only page when it escalates.  The link
lasts only while its holder still holds such a role (``holder_refusal``, called when a link is
resolved), so a re-import, or any later edit, that changes the role ends the link at once.

Nobody approves what they asked for, nor judges a task they own: ``reviewers`` leaves them out,
and when the office has nobody else the leading group decides instead.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.models import Department, Link, Person, PlanRole, Project, ReviewItem, System, Task
from duban.vocabulary import LinkAction, PlanRoleKind

# reviewer links: approvals (审核, 待审核事项) and 督查 verdicts
REVIEWER_LINKS = frozenset({LinkAction.REVIEW, LinkAction.QUEUE, LinkAction.REVIEW_VERDICT})


def plan_roles(session: Session, plan_id: int) -> dict[str, list[int]]:
    """The leading group and the office of a plan, each in its listed order (no repeats)."""
    out: dict[str, list[int]] = {PlanRoleKind.LEADING_GROUP: [], PlanRoleKind.OFFICE: []}
    rows = session.execute(select(PlanRole.person_id, PlanRole.role).where(PlanRole.plan_id == plan_id).order_by(PlanRole.position))
    for person_id, role in rows:
        if role in out and person_id not in out[role]:
            out[role].append(person_id)
    return out


def _excluded(exclude: int | Collection[int] | None) -> set[int]:
    if exclude is None:
        return set()
    return {exclude} if isinstance(exclude, int) else set(exclude)


def reviewers(session: Session, plan_id: int, *, exclude: int | Collection[int] | None = None) -> list[int]:
    """Who approves completions and extensions of a plan, and judges a review's tasks: the office
    (领导小组办公室), or the leading group when the office has nobody else; never the people in
    ``exclude`` (who asked, who owns the task).  Empty: nobody may decide."""
    roles, left_out = plan_roles(session, plan_id), _excluded(exclude)
    for role in (PlanRoleKind.OFFICE, PlanRoleKind.LEADING_GROUP):
        people = [p for p in roles[role] if p not in left_out]
        if people:
            return people
    return []


def line_covering(members: Sequence[tuple[int, dict[str, Any]]], system: str | None, department: str | None) -> tuple[int, ...]:
    """Which office members (``(person, scope)`` in order) a task of ``system`` led by ``department``
    belongs to: the members whose line (督办条线: ``systems``, ``departments``) covers it; when no line
    covers it, the members without a line (the office's director), and all of them only when every
    member has a line."""
    covered = tuple(
        pid for pid, scope in members if system in scope.get("systems", ()) or (department and department in scope.get("departments", ()))
    )
    general = tuple(pid for pid, scope in members if not scope.get("systems") and not scope.get("departments"))
    return covered or general or tuple(pid for pid, _ in members)


def on_line(session: Session, task: Task, candidates: Sequence[int]) -> list[int]:
    """``candidates`` (a task's reviewers) narrowed to the office members on the task's line
    (:func:`line_covering` among them); all of them when none is an office member (the leading
    group decides instead)."""
    rows = session.execute(
        select(PlanRole.person_id, PlanRole.scope)
        .where(PlanRole.plan_id == task.plan_id, PlanRole.role == PlanRoleKind.OFFICE, PlanRole.person_id.in_(list(candidates)))
        .order_by(PlanRole.position)
    ).all()
    if not rows:
        return list(candidates)
    dept = session.scalar(select(Department.name).where(Department.id == task.lead_department_id)) if task.lead_department_id else None
    system = session.scalar(select(System.name).join(Project, Project.system_id == System.id).where(Project.id == task.project_id))
    chosen = set(line_covering([(pid, scope or {}) for pid, scope in rows], system, dept))
    return [p for p in candidates if p in chosen]


def reviewer_holders(session: Session, plan_id: int) -> set[int]:
    """Who may hold a reviewer's link of a plan: the office, and the leading group too while the
    office has at most one member (the leading group then decides what that member asked or owns)."""
    roles = plan_roles(session, plan_id)
    office = set(roles[PlanRoleKind.OFFICE])
    return office | set(roles[PlanRoleKind.LEADING_GROUP]) if len(office) <= 1 else office


def report_holders(session: Session, plan_id: int) -> set[int]:
    """Who reads a plan's review reports: the leading group and the office."""
    roles = plan_roles(session, plan_id)
    return set(roles[PlanRoleKind.LEADING_GROUP]) | set(roles[PlanRoleKind.OFFICE])


def who_decides(session: Session, plan_id: int, exclude: Collection[int]) -> str:
    """Who decides what the people in ``exclude`` may not (a sentence's subject, in Chinese)."""
    roles, left_out = plan_roles(session, plan_id), set(exclude)
    office = roles[PlanRoleKind.OFFICE]
    if any(p not in left_out for p in office):
        return "领导小组办公室其他成员" if left_out & set(office) else "领导小组办公室"
    if any(p not in left_out for p in roles[PlanRoleKind.LEADING_GROUP]):
        return "领导小组"
    return ""


def task_viewer(session: Session, person_id: int, task: Task, department: Department | None, owner: Person | None) -> bool:
    """Whether ``person_id`` may still read ``task``'s page: its owner, the lead department's head
    or supervising leader, the task's supervising leader, the owner's manager, the plan's leading
    group or office, or the owner of a 督查 follow-up on the task."""
    near: set[Any] = {task.owner_id, task.supervisor_id, owner.manager_id if owner is not None else None}
    if department is not None:
        near |= {department.head_id, department.supervisor_id}
    if person_id in near or person_id in report_holders(session, task.plan_id):
        return True
    follow_up = select(ReviewItem.id).where(ReviewItem.task_id == task.id, ReviewItem.follow_up_owner_id == person_id).limit(1)
    return session.scalar(follow_up) is not None


NOT_REVIEWER = "您目前不在本方案的审核人员名单中，此链接已不能使用。如有疑问，请联系领导小组办公室。"
NOT_READER = "您已不在本方案的领导小组或领导小组办公室名单中，此链接已失效。如有疑问，请联系领导小组办公室。"
NOT_VIEWER = "您已不再负责或分管该任务，此链接已失效。如有疑问，请联系领导小组办公室。"
NOT_ACTIVE = "您已不在本方案的人员名单中，此链接已失效。如有疑问，请联系领导小组办公室。"


def holder_refusal(
    session: Session, link: Link, task: Task | None, department: Department | None, owner: Person | None
) -> tuple[str, str] | None:
    """Why the holder of ``link`` may no longer use it — (reason, message) — or None while they
    still hold the role that earned it (owner links are checked by the caller)."""
    if link.action in REVIEWER_LINKS:
        return None if link.person_id in reviewer_holders(session, link.plan_id) else ("not_reviewer", NOT_REVIEWER)
    if link.action == LinkAction.REVIEW_REPORT:
        return None if link.person_id in report_holders(session, link.plan_id) else ("role", NOT_READER)
    if link.action == LinkAction.VIEW and task is not None and not task_viewer(session, link.person_id, task, department, owner):
        return ("role", NOT_VIEWER)
    if link.action == LinkAction.MINE:  # a person's own page lasts while they are on the plan's list
        holder = session.get(Person, link.person_id)
        return None if holder is not None and holder.active else ("role", NOT_ACTIVE)
    return None
