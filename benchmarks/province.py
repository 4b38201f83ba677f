"""The province's data: N schools built in code, deterministic for a seed.

Each school is an institution (its code ``school-001`` …, named after the school) with one plan of
the same code; :func:`load` imports each plan into its own institution.  The one generator of the
benchmarks (``bench_province``, ``bench_sweep``, ``bench_rollup``).  A school has 175 tasks, ≈ 650 milestones, 100 people and 30
departments; the milestones' due dates are spread around the reference day so that it has
realistic work: steps long overdue, overdue by a few days, due within the reminder window, and
later ones; 70 % of the tasks are acknowledged (签收), set by :func:`acknowledged`.

Imports only the standard library at module level (a driver process stays light); the schema
classes are imported when plans are built.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from benchmarks.generate import (
    CRITERIA,
    PROJECT_STEMS,
    STATEMENT_PARTS,
    STEP_ACTIONS,
    SYSTEMS,
    TITLE_OBJECTS,
    TITLE_VERBS,
    _department_names,
)

TODAY = dt.date(2026, 12, 28)  # a Monday: the day the outside evaluation measured
ASSIGNED = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # the tasks were assigned then
TASKS, PEOPLE, DEPARTMENTS = 175, 100, 30
ACK_SHARE = 7  # of 10 tasks acknowledged (position % 10 < ACK_SHARE)
LEADERS = ("党委书记", "校长", "党委副书记", "纪委书记", "常务副校长", "副校长（教学）", "副校长（学工）", "副校长（后勤）")
OFFICE = ("领导小组办公室主任", "督办员")


def school(index: int, rng: random.Random, *, today: dt.date = TODAY) -> Any:
    """School number ``index`` (0-based) as a resolved plan."""
    from definitions.schema import GroupDef, PlanDefinition

    code = f"school-{index + 1:03d}"
    departments, people, members = _people(index, rng)
    systems = tuple(GroupDef(code=f"{s + 1:02d}", name=SYSTEMS[s], position=s) for s in range(len(SYSTEMS)))
    projects = tuple(
        GroupDef(
            code=f"{s % len(SYSTEMS) + 1:02d}.{s // len(SYSTEMS) + 1}",
            name=f"{PROJECT_STEMS[s % len(PROJECT_STEMS)]}（{s + 1}）",
            position=s,
            system=SYSTEMS[s % len(SYSTEMS)],
        )
        for s in range(45)
    )
    dept_names = [d.name for d in departments]
    tasks = tuple(_task(t, rng, projects, dept_names, members, today) for t in range(TASKS))
    return PlanDefinition(
        code=code,
        name=f"示例学校{index + 1:03d}“三全育人”综合改革实施方案",
        organization=f"示例学校{index + 1:03d}",
        approval_required=True,
        report_every="semester",
        leading_group=LEADERS[:5],
        office=OFFICE,
        departments=tuple(departments),
        people=tuple(people),
        systems=systems,
        projects=projects,
        tasks=tasks,
    )


def _person(name: str, dep: str, title: str, email: str, manager: str | None) -> Any:
    from definitions.schema import PersonDef

    return PersonDef(name=name, department=dep, title=title, email=email, mobile=None, notify=(), manager=manager)


def _people(index: int, rng: random.Random) -> tuple[list[Any], list[Any], dict[str, list[str]]]:
    """30 departments with their heads, 8 leaders, 2 office members and 60 staff: 100 people."""
    from definitions.schema import DepartmentDef

    names = _department_names(DEPARTMENTS)
    departments, people, members = [], [], {}
    for i, dep in enumerate(names):
        supervisor = LEADERS[2 + i % (len(LEADERS) - 2)]
        departments.append(DepartmentDef(name=dep, head=f"{dep}负责人", supervisor=supervisor))
        people.append(_person(f"{dep}负责人", dep, "部门负责人", f"s{index:03d}-h{i:02d}@example.org", supervisor))
        members[dep] = []
    for k in range(PEOPLE - DEPARTMENTS - len(LEADERS) - len(OFFICE)):
        dep = names[k % len(names)]
        name = f"{dep}教师{k + 1:03d}"
        members[dep].append(name)
        title = rng.choice(("科长", "科员", "专任教师", "辅导员"))
        people.append(_person(name, dep, title, f"s{index:03d}-t{k:03d}@example.org", f"{dep}负责人"))
    for i, name in enumerate(LEADERS):
        people.append(_person(name, names[0], name, f"s{index:03d}-l{i}@example.org", None if i == 0 else LEADERS[0]))
    for i, name in enumerate(OFFICE):
        people.append(_person(name, names[0], name, f"s{index:03d}-o{i}@example.org", f"{names[0]}负责人"))
    return departments, people, members


def _task(t: int, rng: random.Random, projects: tuple, dept_names: list[str], members: dict[str, list[str]], today: dt.date) -> Any:
    """One task: 3–4 steps (≈ 3.7 on average), the first due between 60 days before ``today``
    and 180 days after it, the next 20–90 days later; one task in five recurring or ongoing."""
    from definitions.schema import MilestoneDef, TaskDef

    project = projects[t * len(projects) // TASKS]
    dep = dept_names[rng.randrange(len(dept_names))]
    owner = f"{dep}负责人" if rng.random() < 0.2 or not members[dep] else rng.choice(members[dep])
    kind = rng.random()
    schedule, period, month = "once", None, None
    if kind < 0.12:
        schedule = "recurring"
        period = rng.choice(("month", "quarter", "semester", "semester", "year"))
        month = 12 if period == "year" else None
    elif kind < 0.20:
        schedule, period = "ongoing", rng.choice(("month", "quarter", "semester"))
    n_ms = rng.choices((3, 4), weights=(3, 7))[0]
    due = today + dt.timedelta(days=rng.randrange(-60, 180))
    ms = []
    for k in range(n_ms):
        is_final = schedule == "once" and k == n_ms - 1
        title = "完成全部任务" if is_final else rng.choice(STEP_ACTIONS)
        ms.append(MilestoneDef(seq=k + 1, title=title, due=due, due_text=f"{due.year}年{due.month}月{due.day}日", is_final=is_final))
        due = due + dt.timedelta(days=rng.randrange(20, 90))
    deadline_text = {
        "once": ms[-1].due_text,
        "recurring": {"month": "每月", "quarter": "每季度", "semester": "每学期末", "year": "每年12月底"}.get(period or "", ""),
        "ongoing": "长期坚持",
    }[schedule]
    others = [d for d in dept_names if d != dep]
    return TaskDef(
        code=f"{project.code}.{t + 1}",
        system=project.system,
        project=project.name,
        title=f"{rng.choice(TITLE_VERBS)}{rng.choice(TITLE_OBJECTS)}（{t + 1}）",
        statement="".join(rng.sample(STATEMENT_PARTS, 3)),
        done_criteria=rng.choice(CRITERIA),
        owner=owner,
        lead_department=dep,
        partners=tuple(rng.sample(others, rng.randrange(3))),
        supervisor=None,
        schedule=schedule,
        period=period,
        period_month=month,
        deadline_text=deadline_text,
        milestones=tuple(ms),
        position=t,
    )


def schools(n: int, *, seed: int = 1, today: dt.date = TODAY) -> list[Any]:
    """``n`` schools; school ``i`` is the same whatever ``n`` is (its own seeded generator)."""
    return [school(i, random.Random(f"{seed}:{i}"), today=today) for i in range(n)]


def load(engine: Any, plans: list[Any], *, now: dt.datetime = ASSIGNED, source: str = "bench_province") -> None:
    """Write the schools into the store as imported on ``now`` (one transaction each), each plan
    into its own institution: the school's code and name (its organisation)."""
    from duban.db import session_scope
    from duban.plans.sync import apply_plan

    for plan in plans:
        with session_scope(engine) as session:
            apply_plan(session, plan, actor="bench", source=source, now=now, institution=plan.code, institution_name=plan.organization)


def acknowledged(engine: Any, *, now: dt.datetime = ASSIGNED) -> int:
    """Mark every task announced (任务下达) when it was assigned, and 70 % of them acknowledged
    two days later (two UPDATEs); returns the tasks acknowledged."""
    from sqlalchemy import update

    from duban.db import session_scope
    from duban.models import Task

    with session_scope(engine) as session:
        session.execute(update(Task).values(announced_at=now))
        rows = session.execute(update(Task).where(Task.position % 10 < ACK_SHARE).values(acknowledged_at=now + dt.timedelta(days=2)))
        return int(getattr(rows, "rowcount", 0) or 0)
