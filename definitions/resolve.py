"""Resolve a written plan (``PlanFile``) into a ``PlanDefinition``, reporting every problem at once."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import ValidationError

from definitions import plan_settings
from definitions.deadlines import DeadlineError, parse_deadline, parse_period, parse_roadmap
from definitions.person_ids import ID_RULES, person_id_problems
from definitions.problems import Locator, PlanProblems, Problem
from definitions.schema import (
    Deadline,
    DepartmentDef,
    GroupDef,
    MilestoneDef,
    Period,
    PersonDef,
    PlanDefinition,
    PlanFile,
    TaskDef,
)
from definitions.single_line import single_line_problems
from duban.rules.policy import DeadlinePolicy, assessment_policy, effective_policy
from duban.vocabulary import Schedule

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MOBILE_RE = re.compile(r"^\+?[0-9][0-9\- ]{4,19}$")
CODE_RE = re.compile(r"^[^\s/\\?#%\x00-\x1f\x7f-\x9f]{1,50}$")
FINAL_STEP_TITLE = "全部完成（达到完成标志）"


def _fmt(d: dt.date) -> str:
    return d.isoformat()


def _notify_problems(urls: list[str], *, has_email: bool = True, group: bool = False) -> list[str]:
    """Why apprise would not accept these ``notify`` entries (secrets hidden, in privacy mode)."""
    from notifications.addresses import channel_problem, is_email_word

    out = []
    for n, url in enumerate(urls, 1):
        why: str | None
        if group and is_email_word(url):
            why = "群通知地址应为群机器人等 apprise 地址，不能写 email"
        else:
            why = channel_problem(url, has_email=has_email)
        if why:
            out.append(f"第 {n} 个{why}" if len(urls) > 1 else why)
    return out


def _policy_problems(policy: dict, *, plan: bool = False) -> str | None:
    """Why a policy override is not acceptable (Chinese), or None."""
    allowed = list(DeadlinePolicy.model_fields) + (["assessment"] if plan else [])
    unknown = sorted(set(policy) - set(allowed))
    if unknown:
        return f"不认识的督办规则“{'、'.join(unknown)}”，可用的有：{'、'.join(allowed)}"
    if "assessment" in policy:
        try:
            assessment_policy(policy)
        except (ValidationError, TypeError) as err:
            if isinstance(err, ValidationError):
                first = err.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                return f"考核设置“assessment.{where}”不正确（{first['msg']}）：权重为不小于 0 的数，各项上限为大于 0 的数"
            return "考核设置“assessment”应为若干“名称: 数值”（见 docs/rollup.md）"
    try:
        effective_policy(policy)
    except ValidationError as err:
        first = err.errors()[0]
        if first["loc"][0] in ("send_hours", "office_batch_times"):
            return f"督办规则“{first['loc'][0]}”：{first['ctx']['error'] if 'ctx' in first else first['msg']}"
        return f"督办规则“{first['loc'][0]}”取值不正确（{first['msg']}）：天数应为不小于 1 的整数，提醒天数为整数列表"
    return None


class _Names:
    """Names declared in one table (部门表 / 人员表) and the references to them.

    Without such a table in the file, every referenced name is accepted and registered
    ("implied"); with one, an unknown name is a problem.
    """

    def __init__(self, bad, table: str, noun: str):
        self.bad, self.table, self.noun = bad, table, noun
        self.index: dict[str, int] = {}
        self.implied: list[str] = []
        self._implied_set: set[str] = set()

    def register(self, name: str, where: str, label: str, duplicate: str) -> None:
        if not name:
            self.bad(where, f"{label}不能为空")
        elif name in self.index:
            self.bad(where, duplicate.format(n=self.index[name] + 1))
        else:
            self.index[name] = len(self.index)

    def ref(self, name: str | None, where, what: str) -> str | None:
        """``where`` is the location text, or a function giving it (only called on a problem)."""
        if not name:
            return None
        if name in self.index or name in self.implied:
            return name
        if self.index:
            self.bad(
                where() if callable(where) else where,
                f"{what}“{name}”不在{self.table}中：请先在{self.table}中登记，或改为{self.table}中已有的{self.noun}",
            )
            return None
        self.implied.append(name)
        return name


def resolve(plan_file: PlanFile, locator: Locator | None = None, *, check_notify: bool = True) -> PlanDefinition:
    """Check names, parse deadlines and build milestones; raise ``PlanProblems`` listing all issues."""
    return _Resolver(plan_file, locator or Locator("<plan>"), check_notify=check_notify).run()


class _Resolver:
    """One resolution: the steps of :func:`resolve` in file order, collecting every problem."""

    def __init__(self, plan_file: PlanFile, loc: Locator, *, check_notify: bool) -> None:
        self.file, self.loc, self.check_notify = plan_file, loc, check_notify
        self.problems: list[Problem] = []
        self.depts = _Names(self.bad, "部门表", "名称")
        self.people_names = _Names(self.bad, "人员表", "姓名")
        self.dept_by_name: dict[str, DepartmentDef] = {}
        self.systems: list[GroupDef] = []
        self.projects: list[GroupDef] = []
        self.tasks: list[TaskDef] = []
        self.task_seen: dict[str, Any] = {}

    def bad(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def run(self) -> PlanDefinition:
        p, loc = self.file.plan, self.loc
        self.problems += single_line_problems(self.file, loc)
        self.problems += person_id_problems(self.file.people, loc)
        report_every = self._plan_settings()
        self._register_names()
        people = self._people()
        self._manager_cycles(people)
        departments = self._departments()
        channels = self._channels()
        self.dept_by_name = {d.name: d for d in departments}
        person_ref = self.people_names.ref
        leading_group = tuple(n for n in (person_ref(x, loc.plan("leading_group"), "领导小组成员") for x in p.leading_group) if n)
        office = tuple(
            n for n in (person_ref(x if isinstance(x, str) else x.name, loc.plan("office"), "领导小组办公室成员") for x in p.office) if n
        )
        self._systems(report_every)
        ends_on = plan_settings.plan_ends_on(p, loc, self.bad)
        bulletin_every = plan_settings.bulletin_every(p, loc, self.bad)
        known_departments = set(self.depts.index) | set(self.depts.implied)
        scopes = plan_settings.office_scopes(p, loc, self.bad, systems=[s.name for s in self.systems], departments=known_departments)
        if self.problems:
            raise PlanProblems(loc.source, self.problems)
        warnings = [*self.loc.notes, *self._register_implied(departments, people)]
        return PlanDefinition(
            code=p.code,
            name=p.name,
            organization=p.organization,
            approval_required=p.approval_required,
            report_every=report_every,
            leading_group=leading_group,
            office=office,
            departments=tuple(departments),
            people=tuple(people),
            systems=tuple(self.systems),
            projects=tuple(self.projects),
            tasks=tuple(self.tasks),
            policy=dict(p.policy),
            channels=channels,
            warnings=tuple(warnings),
            ends_on=ends_on,
            announce_on_import=p.announce_on_import,
            bulletin_every=bulletin_every,
            office_scopes=scopes,
        )

    def _plan_settings(self) -> Period:
        """The plan's code and policy checked; its report period parsed (semester when it cannot be)."""
        p, loc = self.file.plan, self.loc
        if not p.code or not CODE_RE.match(p.code):
            self.bad(loc.plan("code"), f"方案编号“{p.code}”不可用：编号不能含空格和 / \\ ? # % 字符，最多 50 个字符")
        if p.policy and (why := _policy_problems(p.policy, plan=True)):
            self.bad(loc.plan("policy"), why)
        try:
            return parse_period(p.report_every)
        except DeadlineError as err:
            self.bad(loc.plan("report_every"), str(err))
            return Period.SEMESTER

    def _register_names(self) -> None:
        """Departments and people: unique names; references resolve against them."""
        for i, d in enumerate(self.file.departments):
            self.depts.register(d.name, self.loc.department(i, "name"), "部门名称", f"部门“{d.name}”重复（已在第 {{n}} 个部门中出现）")
        for i, person in enumerate(self.file.people):
            self.people_names.register(
                person.name,
                self.loc.person(i, "name"),
                "姓名",
                f"人员“{person.name}”重复（已在第 {{n}} 位人员中出现）；姓名在方案内须唯一，同名者请加以区分（如“张伟（教务处）”）",
            )

    def _people(self) -> list[PersonDef]:
        loc, bad, out = self.loc, self.bad, []
        for i, person in enumerate(self.file.people):
            if person.email and not EMAIL_RE.match(person.email):
                bad(loc.person(i, "email"), f"邮箱“{person.email}”格式不正确，应形如 name@example.org")
            if person.mobile and not MOBILE_RE.match(person.mobile):
                bad(loc.person(i, "mobile"), f"手机号“{person.mobile}”格式不正确，应为数字（可带 +86 和连字符）")
            if self.check_notify:
                for why in _notify_problems(person.notify, has_email=bool(person.email)):
                    bad(loc.person(i, "notify"), why)
            if person.manager == person.name:
                bad(loc.person(i, "manager"), "直接上级不能是本人")
            out.append(
                PersonDef(
                    name=person.name,
                    department=self.depts.ref(person.department, loc.person(i, "department"), "所在部门"),
                    title=person.title or None,
                    email=person.email or None,
                    mobile=person.mobile or None,
                    notify=tuple(person.notify),
                    staff_no=person.staff_no or None,
                    wecom_userid=person.wecom_userid or None,
                    dingtalk_userid=person.dingtalk_userid or None,
                    feishu_open_id=person.feishu_open_id or None,
                    located={c: loc.person(i, c) for c in ID_RULES if getattr(person, c)},
                    manager=self.people_names.ref(person.manager, loc.person(i, "manager"), "直接上级")
                    if person.manager != person.name
                    else None,
                )
            )
        return out

    def _manager_cycles(self, people: list[PersonDef]) -> None:
        """A chain of managers must end: report each cycle once, at its first member."""
        managers = {pd.name: pd.manager for pd in people}
        reported: set[str] = set()
        for i, pd in enumerate(people):
            chain, cur = [pd.name], pd.manager
            while cur and cur != pd.name and cur not in chain and len(chain) <= len(people):
                chain.append(cur)
                cur = managers.get(cur)
            if cur == pd.name and pd.name not in reported:
                reported.update(chain)
                self.bad(self.loc.person(i, "manager"), f"直接上级形成了循环（{' → '.join([*chain, pd.name])}）：请检查上级关系")

    def _departments(self) -> list[DepartmentDef]:
        loc, person_ref, out = self.loc, self.people_names.ref, []
        for i, d in enumerate(self.file.departments):
            if self.check_notify:
                for why in _notify_problems(d.notify, group=True):
                    self.bad(loc.department(i, "notify"), why)
            out.append(
                DepartmentDef(
                    name=d.name,
                    head=person_ref(d.head, loc.department(i, "head"), "部门负责人"),
                    supervisor=person_ref(d.supervisor, loc.department(i, "supervisor"), "分管校领导"),
                    notify=tuple(d.notify),
                )
            )
        return out

    def _channels(self) -> dict[str, list[str]]:
        channels = {k: list(v) for k, v in self.file.plan.channels.model_dump().items() if v}
        if self.check_notify:
            for key, urls in channels.items():
                for why in _notify_problems(urls, group=True):
                    self.bad(self.loc.plan(f"channels.{key}"), why)
        return channels

    def _systems(self, report_every: Period) -> None:
        """Systems, their projects and the projects' tasks, in file order."""
        system_seen: set[str] = set()
        for si, s in enumerate(self.file.systems):
            if not s.name:
                self.bad(self.loc.system(si, "name"), "育人体系名称不能为空")
                continue
            if s.name in system_seen:
                self.bad(self.loc.system(si, "name"), f"育人体系“{s.name}”重复出现")
                continue
            system_seen.add(s.name)
            self.systems.append(GroupDef(code=s.code or f"{len(self.systems) + 1:02d}", name=s.name, position=len(self.systems)))
            project_seen: set[str] = set()
            for pi, pr in enumerate(s.projects):
                if not pr.name:
                    self.bad(self.loc.project(si, pi, "name"), "重点项目名称不能为空")
                    continue
                if pr.name in project_seen:
                    self.bad(self.loc.project(si, pi, "name"), f"重点项目“{pr.name}”在体系“{s.name}”中重复出现")
                    continue
                project_seen.add(pr.name)
                code = pr.code or f"{self.systems[-1].code}.{len(project_seen)}"
                self.projects.append(GroupDef(code=code, name=pr.name, position=len(self.projects), system=s.name))
                for ti, t in enumerate(pr.tasks):
                    at = lambda field, _t=t, _si=si, _pi=pi, _ti=ti: self.loc.task(_si, _pi, _ti, field, _t.code)  # noqa: E731
                    self._task(t, at, system=s.name, project=pr.name, report_every=report_every)

    def _task_code(self, t: Any, at) -> None:
        if not t.code:
            self.bad(at("code"), "缺少任务编号（序号），编号用于再次导入时匹配任务")
        elif not CODE_RE.match(t.code):
            self.bad(at("code"), f"任务编号“{t.code}”不可用：编号不能含空格和 / \\ ? # % 字符，最多 50 个字符")
        elif t.code in self.task_seen:
            first = self.task_seen[t.code]().split(" · ", 1)[-1]
            self.bad(at("code"), f"任务编号“{t.code}”重复（{first}已使用）；编号在方案内须唯一")
        else:
            self.task_seen[t.code] = lambda _at=at: _at("code")  # where, worked out only if needed

    def _task(self, t: Any, at, *, system: str, project: str, report_every: Period) -> None:
        """One task checked; appended unless its deadline cannot be read.  ``at(field)`` locates a field."""
        department_ref, person_ref, bad = self.depts.ref, self.people_names.ref, self.bad
        self._task_code(t, at)
        if not t.title:
            bad(at("title"), "具体任务内容不能为空")
        lead = department_ref(t.lead_department, lambda: at("lead_department"), "牵头单位")
        partners = tuple(n for n in (department_ref(x, lambda: at("partners"), "配合单位") for x in t.partners) if n)
        owner = person_ref(t.owner, lambda: at("owner"), "责任人")
        if not t.owner:
            head = self.dept_by_name[lead].head if lead in self.dept_by_name else None
            if head:
                owner = head
            else:
                bad(at("owner"), "缺少责任人：请填写责任人，或在部门表中为牵头单位指定负责人")
        supervisor = person_ref(t.supervisor, lambda: at("supervisor"), "分管校领导")
        if not t.supervisor and lead in self.dept_by_name:
            supervisor = self.dept_by_name[lead].supervisor
        if t.policy and (why := _policy_problems(t.policy)):
            bad(at("policy"), why)
        milestones, schedule = _milestones(t, at, bad)
        report_period = None
        if t.report_every:
            try:
                report_period = parse_period(t.report_every)
            except DeadlineError as err:
                bad(at("report_every"), str(err))
        if schedule is None:
            return
        kind, period, month, text = schedule
        if kind == Schedule.ONGOING:
            period = report_period or report_every
        elif kind == Schedule.ONCE and report_period:
            period = report_period
        self.tasks.append(
            TaskDef(
                code=t.code,
                system=system,
                project=project,
                title=t.title,
                statement=t.statement,
                done_criteria=t.done_criteria,
                owner=owner or "",
                lead_department=lead,
                partners=partners,
                supervisor=supervisor,
                schedule=kind,
                period=period,
                period_month=month,
                deadline_text=text,
                milestones=tuple(milestones),
                position=len(self.tasks),
                policy=dict(t.policy),
                ends_on=plan_settings.task_ends_on(t, kind, text, at, bad),
            )
        )

    def _register_implied(self, departments: list[DepartmentDef], people: list[PersonDef]) -> list[str]:
        """Names only referenced (no 部门表 / 人员表 in the file) registered; the warnings about it."""
        warnings: list[str] = []
        implied_departments, implied_people = self.depts.implied, self.people_names.implied
        for name in implied_departments:
            departments.append(DepartmentDef(name=name, head=None, supervisor=None))
        if implied_departments:
            warnings.append(f"文件中没有部门表，已按任务中出现的名称登记 {len(implied_departments)} 个部门（未指定负责人）")
        for name in implied_people:
            people.append(PersonDef(name=name, department=None, title=None, email=None, mobile=None, notify=(), manager=None))
        if implied_people:
            warnings.append(f"文件中没有人员表，已按任务中出现的姓名登记 {len(implied_people)} 位人员（暂无联系方式，无法接收提醒）")
        if not self.tasks:
            warnings.append("方案中没有任何具体任务")
        return warnings


def _milestones(t, at, bad):
    """Milestones of one task and its schedule ``(kind, period, month, text)``; None on problems."""
    ok = True
    final: Deadline | None = None
    if t.deadline is not None and t.deadline != "":
        try:
            final = parse_deadline(t.deadline)
        except DeadlineError as err:
            bad(at("deadline"), str(err))
            ok = False

    steps: list[tuple[Deadline, str]] = []
    if isinstance(t.roadmap, str):
        if t.roadmap.strip():
            try:
                steps = parse_roadmap(t.roadmap)
            except DeadlineError as err:
                bad(at("roadmap"), str(err))
                ok = False
    elif t.roadmap:
        for n, step in enumerate(t.roadmap, 1):
            try:
                d = parse_deadline(step.due)
            except DeadlineError as err:
                bad(at("roadmap"), f"第 {n} 步：{err}")
                ok = False
                continue
            if d.kind != "date":
                bad(at("roadmap"), f"第 {n} 步“{d.text}”不是具体日期：路线图的每一步都需要一个完成时间")
                ok = False
                continue
            steps.append((d, step.title))

    if final is None and not steps and ok:
        bad(at("deadline"), "缺少完成时限：请填写完成时限，或在路线图中列出带日期的步骤")
        return [], None
    if not ok:
        return [], None

    if final is not None and final.kind == "date":
        late = [(n, d) for n, (d, _title) in enumerate(steps, 1) if d.due_date > final.due_date]
        for n, d in late:
            bad(
                at("roadmap"),
                f"路线图第 {n} 步的时间 {_fmt(d.due_date)}（“{d.text}”）晚于完成时限 {_fmt(final.due_date)}（“{final.text}”）",
            )
        if late:
            return [], None

    ordered = sorted(steps, key=lambda s: s[0].due_date)  # stable: same-day steps keep their order
    milestones = [
        MilestoneDef(seq=i + 1, title=title, due=d.due_date, due_text=d.text, is_final=False) for i, (d, title) in enumerate(ordered)
    ]
    if final is None or final.kind == "date":
        if final is not None and (not milestones or milestones[-1].due != final.due_date):
            milestones.append(
                MilestoneDef(seq=len(milestones) + 1, title=FINAL_STEP_TITLE, due=final.due_date, due_text=final.text, is_final=True)
            )
        else:
            last = milestones[-1]
            milestones[-1] = MilestoneDef(last.seq, last.title or FINAL_STEP_TITLE, last.due, last.due_text, True)
        text = final.text if final is not None else milestones[-1].due_text
        return milestones, (Schedule.ONCE, None, None, text)
    if final.kind == "recurring":
        return milestones, (Schedule.RECURRING, final.period, final.month, final.text)
    return milestones, (Schedule.ONGOING, None, None, final.text)
