"""Generate a large, realistic plan workbook in the importer's format (for benchmarks).

    python -m benchmarks.generate --tasks 30000 --out /tmp/bench-30000.xlsx [--seed 1]

The workbook has the sheets ``duban import`` reads: 方案 (plan settings), 任务清单 (one row per
task), 人员 and 部门.  It is written with openpyxl's write-only mode, so there is no merged title
row; systems and projects are named on the first row of their group and left blank below (the
importer fills blank cells down), or repeated on every row with ``--repeat-groups``.

The proportions follow the example plan (13 systems, 45 projects per 175 tasks): about 3,000
people and 60 departments at 30,000 tasks; 完成时限 in the forms offices write (dates, months,
halves, quarters, 每学期, 长期坚持, real date cells); a 路线图 of 2–3 dated steps on about 70 % of
the tasks (≈ 2.9 milestones per task), never later than the task's own deadline, so the file imports with zero problems.
The same ``seed`` always gives the same workbook.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definitions.export import DEPARTMENT_HEADERS, PEOPLE_HEADERS, TASK_HEADERS

SYSTEMS = (
    "课程育人",
    "科研育人",
    "实践育人",
    "文化育人",
    "网络育人",
    "心理育人",
    "管理育人",
    "服务育人",
    "资助育人",
    "组织育人",
    "全员育人",
    "全过程育人",
    "组织保障",
)
PROJECT_STEMS = (
    "课程思政示范建设",
    "思政课教学改革",
    "专业课程育人元素挖掘",
    "科研诚信教育",
    "学生科研训练计划",
    "社会实践基地建设",
    "志愿服务品牌培育",
    "劳动教育实施",
    "校园文化品牌建设",
    "优秀传统文化传承",
    "网络文明素养提升",
    "网络思政阵地建设",
    "心理健康教育课程",
    "心理危机预防干预",
    "管理制度育人梳理",
    "后勤服务育人",
    "图书馆服务育人",
    "精准资助体系建设",
    "资助育人成效评价",
    "基层党组织建设",
    "团学组织育人",
    "辅导员队伍建设",
    "班主任工作提升",
    "新生入学教育",
    "毕业生离校教育",
    "考核评价机制完善",
    "经费保障机制",
    "信息化督办平台建设",
)
CORE_DEPARTMENTS = (
    "党委工作部",
    "党委组织部",
    "党委宣传部",
    "工会",
    "纪检监察室",
    "学校办公室",
    "人事处",
    "财务处",
    "教务处",
    "马克思主义学院",
    "图书馆",
    "科研处",
    "信息化办公室",
    "学生工作处",
    "心理健康教育中心",
    "校团委",
    "招生就业处",
    "后勤处",
    "保卫处",
    "校医院",
    "国际交流处",
    "发展规划处",
    "审计处",
    "资产管理处",
    "继续教育学院",
    "档案馆",
)
SCHOOL_STEMS = (
    "机电工程",
    "信息工程",
    "经济管理",
    "艺术设计",
    "建筑工程",
    "汽车工程",
    "护理",
    "食品工程",
    "电子商务",
    "智能制造",
    "外国语",
    "旅游管理",
    "化工",
    "医药",
    "交通运输",
    "物流管理",
    "数字媒体",
    "财会金融",
    "体育",
    "音乐舞蹈",
    "学前教育",
    "园林园艺",
    "环境工程",
    "新能源",
    "航空",
    "软件",
    "通信",
    "大数据",
    "人工智能",
    "公共管理",
    "法律事务",
    "文化传媒",
    "现代农业",
    "畜牧兽医",
)
TITLE_VERBS = ("完善", "推进", "建立", "实施", "开展", "修订", "建设", "优化", "组织", "落实", "深化", "健全")
TITLE_OBJECTS = (
    "课程思政教学设计",
    "专业人才培养方案",
    "实践教学体系",
    "学生评价制度",
    "教师育人能力培训",
    "学生社团指导机制",
    "校园文化活动",
    "网络舆情研判机制",
    "心理健康普查",
    "困难学生帮扶台账",
    "育人成效评价指标",
    "辅导员工作考核办法",
    "劳动教育课程",
    "志愿服务记录制度",
    "校企合作育人项目",
    "党员先锋岗设置",
    "宿舍育人阵地",
    "就业指导课程",
    "创新创业训练",
    "安全教育活动",
)
STATEMENT_PARTS = (
    "对照学校“三全育人”综合改革实施方案，梳理现有工作基础和薄弱环节，明确年度目标。",
    "组织专题调研，召开师生座谈会，形成问题清单、任务清单和责任清单。",
    "制定具体实施办法，明确时间节点、责任人和配合单位，按月报送进展。",
    "建立工作台账，实行清单化管理、项目化推进，确保各项措施落地见效。",
    "加强与二级学院和相关职能部门的协同，统筹人员、经费和场地保障。",
    "及时总结经验做法，选树典型案例，在校内外宣传推广。",
    "将工作成效纳入部门年度考核，强化结果运用。",
)
CRITERIA = (
    "印发实施办法并组织实施，形成工作总结报告。",
    "建成相关制度文件不少于2项，覆盖全部二级学院。",
    "完成年度目标任务，师生满意度达到90%以上。",
    "形成典型案例3个以上，并在校级以上平台交流。",
    "建立工作台账，按期报送进展，通过领导小组办公室验收。",
)
STEP_ACTIONS = (
    "制定实施方案",
    "完成调研摸底",
    "召开启动会议",
    "印发工作制度",
    "开展中期检查",
    "组织专题培训",
    "形成阶段成果",
    "完善工作台账",
    "开展试点工作",
    "总结推广经验",
    "组织自查评估",
    "提交总结报告",
)
RECURRING = ("每学期末", "每学期", "每年9月", "每季度", "每月", "每年12月底", "每半年")
ONGOING = ("长期坚持", "持续推进", "常态化开展")
REPORT_PERIODS = ("每月", "每季度", "每学期")
LEADER_TITLES = ("党委书记", "校长", "党委副书记", "党委副书记", "纪委书记", "常务副校长", "副校长", "副校长", "副校长", "副校长")

FIRST_MONTH = (2026, 9)  # the reform period starts in September 2026 …
LAST_MONTH = (2028, 7)  # … and ends in July 2028
CN_QUARTER = "一二三四"


@dataclass
class GeneratedPlan:
    """The rows of each sheet, before writing (handy for tests and for other formats)."""

    code: str
    plan_rows: list[list[Any]]
    task_rows: list[list[Any]]
    people_rows: list[list[Any]]
    department_rows: list[list[Any]]
    stats: dict[str, int] = field(default_factory=dict)


def _month_index(year: int, month: int) -> int:
    return year * 12 + (month - 1)


def _year_month(index: int) -> tuple[int, int]:
    return divmod(index, 12)[0], divmod(index, 12)[1] + 1


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _department_names(n: int) -> list[str]:
    names = list(CORE_DEPARTMENTS[: min(n, len(CORE_DEPARTMENTS))])
    i = 0
    while len(names) < n:
        stem = SCHOOL_STEMS[i % len(SCHOOL_STEMS)]
        round_ = i // len(SCHOOL_STEMS)
        names.append(f"{stem}学院" if round_ == 0 else f"{stem}学院（第{round_ + 1}校区）")
        i += 1
    return names


def _final_deadline(rng: random.Random) -> tuple[Any, int]:
    """A dated 完成时限 in one of the forms offices write, and its month index."""
    first = _month_index(*FIRST_MONTH) + 3  # room for up to 3 earlier roadmap steps
    last = _month_index(*LAST_MONTH)
    mi = rng.randint(first, last)
    y, m = _year_month(mi)
    day = rng.randint(1, _last_day(y, m))
    form = rng.random()
    if form < 0.25:
        return f"{y}年{m}月底前", mi
    if form < 0.40:
        return f"{y}年{m}月", mi
    if form < 0.52:
        return f"{y}-{m:02d}-{day:02d}", mi
    if form < 0.62:
        return dt.date(y, m, day), mi  # a real date cell
    if form < 0.70:
        return f"{y}年{m}月{day}日", mi
    if form < 0.75:
        return f"{y}/{m}/{day}", mi
    # forms that only exist for some months: fall back to the month-end form
    if m in (6, 12) and form < 0.85:
        return (f"{y}年上半年" if m == 6 else f"{y}年下半年"), mi
    if m in (3, 6, 9, 12) and form < 0.93:
        return f"{y}年第{CN_QUARTER[m // 3 - 1]}季度", mi
    if m == 12:
        return f"{y}年底", mi
    return f"{y}年{m}月底", mi


def _roadmap(rng: random.Random, before: int | None) -> str:
    """2–3 dated steps, all in months strictly before month index ``before`` (when given)."""
    n = 3 if rng.random() < 0.8 else 2
    lo = _month_index(*FIRST_MONTH)
    hi = (before - 1) if before is not None else _month_index(*LAST_MONTH)
    lo = max(lo, hi - 12)
    months = sorted(rng.sample(range(lo, hi + 1), n))
    actions = rng.sample(STEP_ACTIONS, n)
    steps = []
    numbered = rng.random() < 0.2
    for k, (mi, action) in enumerate(zip(months, actions, strict=True), 1):
        y, m = _year_month(mi)
        form = rng.random()
        if form < 0.5:
            text = f"{y}年{m}月底前 {action}"
        elif form < 0.8:
            text = f"{y}年{m}月 {action}"
        else:
            text = f"{action}（{y}年{m}月底前）"
        steps.append(f"{k}. {text}" if numbered else text)
    return "；".join(steps)


def build_plan(tasks: int = 30000, *, seed: int = 1, repeat_groups: bool = False, code: str | None = None) -> GeneratedPlan:
    """The rows of a plan with ``tasks`` tasks (deterministic for a given ``seed``)."""
    if tasks < 1:
        raise ValueError("tasks must be at least 1")
    rng = random.Random(seed)
    code = code or f"bench-{tasks}"

    # departments and people -------------------------------------------------------------
    n_departments = max(5, min(60, tasks // 100))
    n_leaders = len(LEADER_TITLES)
    n_people = max(n_leaders + 3 * n_departments, min(3000, tasks // 2))
    width = max(4, len(str(n_people)))
    names = [f"教师{i:0{width}d}" for i in range(1, n_people + 1)]
    departments = _department_names(n_departments)
    leaders = names[:n_leaders]
    heads = names[n_leaders : n_leaders + n_departments]
    supervisors = {dep: leaders[1 + i % (n_leaders - 1)] for i, dep in enumerate(departments)}
    members: dict[str, list[str]] = {dep: [heads[i]] for i, dep in enumerate(departments)}
    department_of = {heads[i]: dep for i, dep in enumerate(departments)}
    for k, name in enumerate(names[n_leaders + n_departments :]):
        dep = departments[k % n_departments]
        members[dep].append(name)
        department_of[name] = dep
    head_of = dict(zip(departments, heads, strict=True))

    people_rows: list[list[Any]] = []
    for i, name in enumerate(names, 1):
        email = f"p{i:0{width}d}@example.org"
        mobile = f"139{i:08d}"
        notify = f"mailto://{email}" if i % 10 == 0 else ""
        if i <= n_leaders:
            dep, title, manager = (
                "学校办公室" if "学校办公室" in departments else departments[0],
                LEADER_TITLES[i - 1],
                ("" if i == 1 else names[0]),
            )
        else:
            dep = department_of[name]
            is_head = head_of[dep] == name
            title = "部门负责人" if is_head else rng.choice(("科长", "专任教师", "辅导员", "科员", "副主任"))
            manager = supervisors[dep] if is_head else head_of[dep]
        people_rows.append([name, dep, title, email, mobile, notify, manager])
    department_rows = [[dep, head_of[dep], supervisors[dep]] for dep in departments]

    # systems, projects, tasks ----------------------------------------------------------
    n_systems = min(len(SYSTEMS), max(1, round(tasks * 13 / 175)))
    n_projects = max(n_systems, round(tasks * 45 / 175))
    n_projects = min(n_projects, tasks)
    task_rows: list[list[Any]] = []
    stats = {
        "tasks": tasks,
        "systems": n_systems,
        "projects": n_projects,
        "people": n_people,
        "departments": n_departments,
        "once": 0,
        "recurring": 0,
        "ongoing": 0,
        "with_roadmap": 0,
        "roadmap_steps": 0,
    }
    project_of_task = [t * n_projects // tasks for t in range(tasks)]
    system_of_project = [p * n_systems // n_projects for p in range(n_projects)]
    project_names: dict[int, str] = {}
    project_number_in_system: dict[int, int] = {}
    counters = [0] * n_systems
    task_counter: dict[int, int] = {}
    last_system = last_project = None
    for t in range(tasks):
        p = project_of_task[t]
        s = system_of_project[p]
        if p not in project_names:
            counters[s] += 1
            project_number_in_system[p] = counters[s]
            stem = PROJECT_STEMS[(p * 7 + s) % len(PROJECT_STEMS)]
            project_names[p] = f"{stem}项目（{counters[s]}）"
        task_counter[p] = task_counter.get(p, 0) + 1
        task_code = f"{s + 1}.{project_number_in_system[p]}.{task_counter[p]}"
        system_cell = SYSTEMS[s] if (repeat_groups or s != last_system) else None
        project_cell = project_names[p] if (repeat_groups or p != last_project) else None
        last_system, last_project = s, p

        lead = rng.choice(departments)
        owner = "" if rng.random() < 0.1 else rng.choice(members[lead])
        partners = "、".join(rng.sample([d for d in departments if d != lead], rng.choice((0, 1, 1, 2)))) if n_departments > 2 else ""
        supervisor = rng.choice(leaders[1:]) if rng.random() < 0.1 else ""
        title = f"{rng.choice(TITLE_VERBS)}{rng.choice(TITLE_OBJECTS)}"
        statement = "".join(rng.sample(STATEMENT_PARTS, rng.randint(2, 4)))
        criteria = rng.choice(CRITERIA)
        kind = rng.random()
        report_every = ""
        with_roadmap = rng.random() < 0.72
        if kind < 0.85:
            deadline, mi = _final_deadline(rng)
            roadmap = _roadmap(rng, mi) if with_roadmap else ""
            stats["once"] += 1
        elif kind < 0.94:
            deadline = rng.choice(RECURRING)
            roadmap = _roadmap(rng, None) if with_roadmap else ""
            stats["recurring"] += 1
        else:
            deadline = rng.choice(ONGOING)
            roadmap = _roadmap(rng, None) if with_roadmap else ""
            if rng.random() < 0.3:
                report_every = rng.choice(REPORT_PERIODS)
            stats["ongoing"] += 1
        if roadmap:
            stats["with_roadmap"] += 1
            stats["roadmap_steps"] += roadmap.count("；") + 1
        task_rows.append(
            [
                task_code,
                system_cell,
                project_cell,
                title,
                statement,
                criteria,
                lead,
                owner,
                partners,
                supervisor,
                deadline,
                roadmap,
                report_every,
            ]
        )

    office = [heads[0]] + [m for m in members[departments[0]][1:3]]
    plan_rows = [
        ["方案编号", code],
        ["方案名称", f"“三全育人”综合改革实施方案（{tasks} 项任务基准测试）"],
        ["单位", "示例职业技术学院"],
        ["办结需审核", "是"],
        ["长期任务反馈周期", "每学期"],
        ["领导小组", "、".join(leaders)],
        ["领导小组办公室", "、".join(office)],
    ]
    return GeneratedPlan(code, plan_rows, task_rows, people_rows, department_rows, stats)


def write_generated(plan: GeneratedPlan, out: str | Path) -> Path:
    """Write the rows as an XLSX workbook with openpyxl's write-only mode (fast, low memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(ws, names) -> None:
        cells = []
        for name in names:
            c = WriteOnlyCell(ws, value=name)
            c.font = bold
            cells.append(c)
        ws.append(cells)

    ws = wb.create_sheet("方案")
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 60
    for row in plan.plan_rows:
        ws.append(row)

    ws = wb.create_sheet("任务清单")
    for letter, width in zip("ABCDEFGHIJKLM", (9, 12, 22, 36, 40, 30, 14, 16, 20, 16, 16, 44, 10), strict=True):
        ws.column_dimensions[letter].width = width
    header(ws, TASK_HEADERS)
    for row in plan.task_rows:
        ws.append(row)

    ws = wb.create_sheet("人员")
    header(ws, PEOPLE_HEADERS)
    for row in plan.people_rows:
        mobile = WriteOnlyCell(ws, value=row[4])
        mobile.number_format = "@"  # mobile numbers are text, not numbers
        ws.append([*row[:4], mobile, *row[5:]])

    ws = wb.create_sheet("部门")
    header(ws, DEPARTMENT_HEADERS)
    for row in plan.department_rows:
        ws.append(row)
    wb.save(out)
    return out


def generate_workbook(
    out: str | Path, tasks: int = 30000, *, seed: int = 1, repeat_groups: bool = False, code: str | None = None
) -> dict[str, int]:
    """Build and write the workbook; return its statistics (tasks, people, roadmap steps …)."""
    plan = build_plan(tasks, seed=seed, repeat_groups=repeat_groups, code=code)
    path = write_generated(plan, out)
    return {**plan.stats, "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30000, help="number of tasks (default 30000)")
    parser.add_argument("--out", required=True, type=Path, help="output .xlsx file")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--code", default=None, help="plan code (default bench-<tasks>)")
    parser.add_argument(
        "--repeat-groups", action="store_true", help="repeat system and project on every row instead of leaving them blank below the first"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    stats = generate_workbook(args.out, args.tasks, seed=args.seed, repeat_groups=args.repeat_groups, code=args.code)
    seconds = time.perf_counter() - start
    print(
        f"wrote {args.out} in {seconds:.1f} s ({stats['bytes'] / 2**20:.1f} MiB): {stats['tasks']} tasks, "
        f"{stats['systems']} systems, {stats['projects']} projects, {stats['people']} people, {stats['departments']} departments; "
        f"{stats['with_roadmap']} roadmaps with {stats['roadmap_steps']} steps; "
        f"{stats['once']} dated / {stats['recurring']} recurring / {stats['ongoing']} ongoing"
    )


if __name__ == "__main__":
    main()
