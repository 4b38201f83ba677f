"""A re-import never silently undoes what was decided in duban: an approved extension, a review's
follow-up step, a done step, a step with evidence.  Such a change is a conflict: shown in the
dry-run, held back by the import, applied only when the office accepts the sheet (--accept CODE,
--accept-sheet).  Through the `duban import` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from duban import actions, approvals
from duban.action_common import Origin
from duban.cli.main import app
from duban.db import session_scope
from duban.links import resolve
from duban.models import Event, Evidence, Milestone, Person, Review, ReviewItem, Task
from duban.plans.diff import ACCEPT_HINT
from duban.plans.importer import import_plan
from duban.reviews import api as reviews
from tests.factories import small_plan, task_of, write_yaml
from tests.web_helpers import IMPORTED, SECRET, make_link, milestone_id

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
TODAY = dt.date(2026, 11, 30)
ORIGIN = Origin(ip="10.1.2.3", user_agent="pytest")
HEAD = "更新方案「测试方案」（demo）"
DRY = "（预览：以上变更尚未写入。去掉 --dry-run 即可导入。）"
HELD = "与系统中已有决定冲突的变更 1 项（未应用，保留系统中的决定）："
TAKEN = "与系统中已有决定冲突的变更 1 项（已确认以表格为准并应用）："
runner = CliRunner()


def base_plan() -> dict:
    """The small plan, task 2 due on 2026-11-30 (the date the field report was about)."""
    plan = small_plan()
    task_of(plan, "2")["deadline"] = "2026年11月30日"
    return plan


def run(*args) -> list[str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def sheet(tmp_path, plan: dict, name: str = "sheet.yaml"):
    return write_yaml(tmp_path / name, plan)


@pytest.fixture
def store(use_database, engine, tmp_path, clock):
    """The base plan imported on 2026-11-02 (the CLI tests below import on the pinned clock)."""
    import_plan(engine, sheet(tmp_path, base_plan(), "base.yaml"), actor="测试", now=IMPORTED)
    return engine


def act(engine, person, action, code, fn, *, mid=None, request=None, **kw):
    """``fn`` done from a fresh link of ``person`` (as from a message), on 2026-11-30."""
    token = make_link(engine, person, action, code, milestone=mid, request=request)
    with session_scope(engine) as s:
        r = resolve(s, token, secret=SECRET, today=TODAY, for_update=True)
        return fn(s, r, ORIGIN, now=NOW, **kw)


def approve(engine, code, mid, request) -> None:
    """督办员 (the office) approves a request from a review link."""
    act(engine, "督办员", "review", code, approvals.decide, mid=mid, request=request, today=TODAY, request_id=None, decision="approve")


# ---------------------------------------------------------------------------------------------
# decisions taken in duban


def extend_task_2(engine) -> None:
    """教务处副处长 asks to move task 2 to 2027-01-15; 督办员 (the office) approves."""
    mid = milestone_id(engine, "2", final=True)
    asked = act(
        engine,
        "教务处副处长",
        "extend",
        "2",
        actions.request_extension,
        mid=mid,
        today=TODAY,
        new_due=dt.date(2027, 1, 15),
        reason="寒假前无法完成",
    )
    approve(engine, "2", mid, asked.request_id)


def complete_first_step(engine, urls=()) -> None:
    """Task 1's step 制定方案 (due 2026-11-20) submitted and approved on 2026-11-30."""
    mid = milestone_id(engine, "1", 1)
    submitted = act(engine, "教务处处长", "done", "1", actions.submit_done, mid=mid, today=TODAY, note="方案已印发", urls=list(urls))
    approve(engine, "1", mid, submitted.request_id)


def submit_first_step(engine) -> None:
    """Task 1's step 制定方案 submitted on 2026-11-30, waiting for the office's review."""
    act(engine, "教务处处长", "done", "1", actions.submit_done, mid=milestone_id(engine, "1", 1), today=TODAY, note="方案已印发")


def report_on_second_step(engine) -> None:
    """Task 1's step 中期检查: a progress report with one evidence link."""
    mid = milestone_id(engine, "1", 2)
    act(engine, "教务处处长", "progress", "1", actions.report_progress, mid=mid, text="已完成中期自查", urls=["https://example.edu.cn/zq"])


def follow_up_on_task_1(engine) -> int:
    """A review of task 1 judged 需整改: a follow-up step 督查整改：补材料 due 2027-01-08; its id."""
    with session_scope(engine) as s:
        review = reviews.create(
            s,
            plan_code=None,
            scope_kind="tasks",
            scope_values=["1"],
            reply_by=dt.date(2026, 12, 4),
            ask="请报告推进情况。",
            today=TODAY,
            started_by="督办员",
        )
        rid = review.id
    with session_scope(engine) as s:
        item = s.scalar(select(ReviewItem).where(ReviewItem.review_id == rid))
        reviews.record_answer(
            s,
            item,
            person=s.get(Person, item.owner_id),
            done="已完成方案",
            problems="",
            next_steps="继续推进",
            urls=[],
            files=[],
            now=NOW,
            today=TODAY,
        )
    with session_scope(engine) as s:
        verdict = reviews.TaskVerdict("1", "需整改", note="材料不全", follow_up_title="补材料", follow_up_due=dt.date(2027, 1, 8))
        reviews.give_verdict(s, s.get(Review, rid), verdict, actor="督办员", now=NOW, today=TODAY)
    with session_scope(engine) as s:
        return s.scalar(select(Milestone.id).where(Milestone.title == "督查整改：补材料"))


def milestones(engine, code: str) -> list[tuple]:
    with session_scope(engine) as s:
        return [
            (m.title, m.due_date.isoformat(), m.sheet_due_date and m.sheet_due_date.isoformat(), m.due_version, m.status, m.origin)
            for m in s.scalars(select(Milestone).join(Task).where(Task.code == code).order_by(Milestone.id))
        ]


def import_events(engine) -> list[tuple]:
    """What the imports after the first one wrote to the audit trail."""
    with session_scope(engine) as s:
        q = select(Event).where(Event.channel == "import", Event.kind != "task_created").order_by(Event.id)
        return [(e.kind, e.actor, e.data) for e in s.scalars(q)]


# ---------------------------------------------------------------------------------------------
# one kind of decision per row: what duban decided, how the sheet changes, the conflict line, and
# what the store holds once the office accepted the sheet


@dataclass(frozen=True)
class Kind:
    decide: Callable
    change: Callable[[dict], None]
    line: str
    code: str
    title: str
    accepted: list[str]  # the ordinary diff lines once accepted
    after: list[tuple]  # the task's milestones once accepted
    event: tuple  # the import event that records the sheet winning


def _move_deadline(plan):
    task_of(plan, "2")["deadline"] = "2026年12月20日"


def _move_first_step(plan):
    task_of(plan, "1")["roadmap"] = "2026年11月25日 制定方案；2026年12月15日 中期检查"


def _drop_first_step(plan):
    task_of(plan, "1")["roadmap"] = "2026年12月15日 中期检查"


def _drop_second_step(plan):
    task_of(plan, "1")["roadmap"] = "2026年11月20日 制定方案"


FINAL = "全部完成（达到完成标志）"
KINDS = {
    "approved-extension": Kind(
        extend_task_2,
        _move_deadline,
        "完成时间：表格为 2026-12-20，督办系统中已批准延期至 2027-01-15（督办员，2026-11-30）",
        "2",
        "建设课程资源库",
        ["完成时限：2026年11月30日 → 2026年12月20日", f"里程碑「{FINAL}」时间：2027-01-15 → 2026-12-20"],
        [(FINAL, "2026-12-20", "2026-12-20", 3, "in_progress", "plan")],
        (
            "milestone_due_changed",
            {
                "from": "2027-01-15",
                "to": "2026-12-20",
                "version": 3,
                "sheet_over_decision": "督办系统中已批准延期至 2027-01-15（督办员，2026-11-30）",
            },
        ),
    ),
    "done-step-moved": Kind(
        complete_first_step,
        _move_first_step,
        "里程碑「制定方案」时间：表格为 2026-11-25，该里程碑已于 2026-11-30 办结（原定 2026-11-20）",
        "1",
        "集体备课",
        ["里程碑「制定方案」时间：2026-11-20 → 2026-11-25"],
        [
            ("制定方案", "2026-11-25", "2026-11-25", 2, "done", "plan"),
            ("中期检查", "2026-12-15", "2026-12-15", 1, "in_progress", "plan"),
            (FINAL, "2026-12-31", "2026-12-31", 1, "in_progress", "plan"),
        ],
        (
            "milestone_due_changed",
            {
                "from": "2026-11-20",
                "to": "2026-11-25",
                "version": 2,
                "sheet_over_decision": "该里程碑已于 2026-11-30 办结（原定 2026-11-20）",
            },
        ),
    ),
    "done-step-removed": Kind(
        lambda engine: complete_first_step(engine, urls=["https://example.edu.cn/fa"]),
        _drop_first_step,
        "里程碑「制定方案」：表格中已删除，该里程碑已于 2026-11-30 办结，已有佐证材料 1 份",
        "1",
        "集体备课",
        ["里程碑「制定方案」已从路线图中删除（归档）"],
        [
            ("制定方案", "2026-11-20", "2026-11-20", 1, "archived", "plan"),
            ("中期检查", "2026-12-15", "2026-12-15", 1, "in_progress", "plan"),
            (FINAL, "2026-12-31", "2026-12-31", 1, "in_progress", "plan"),
        ],
        (
            "milestone_archived",
            {"title": "制定方案", "status_before": "done", "sheet_over_decision": "该里程碑已于 2026-11-30 办结，已有佐证材料 1 份"},
        ),
    ),
    "submitted-step-removed": Kind(
        submit_first_step,
        _drop_first_step,
        "里程碑「制定方案」：表格中已删除，该里程碑已于 2026-11-30 提交办结，等待审核",
        "1",
        "集体备课",
        ["里程碑「制定方案」已从路线图中删除（归档）"],
        [
            ("制定方案", "2026-11-20", "2026-11-20", 1, "archived", "plan"),
            ("中期检查", "2026-12-15", "2026-12-15", 1, "in_progress", "plan"),
            (FINAL, "2026-12-31", "2026-12-31", 1, "in_progress", "plan"),
        ],
        (
            "milestone_archived",
            {"title": "制定方案", "status_before": "submitted", "sheet_over_decision": "该里程碑已于 2026-11-30 提交办结，等待审核"},
        ),
    ),
    "step-with-evidence-removed": Kind(
        report_on_second_step,
        _drop_second_step,
        "里程碑「中期检查」：表格中已删除，该里程碑已有佐证材料 1 份",
        "1",
        "集体备课",
        ["里程碑「中期检查」已从路线图中删除（归档）"],
        [
            ("制定方案", "2026-11-20", "2026-11-20", 1, "in_progress", "plan"),
            ("中期检查", "2026-12-15", "2026-12-15", 1, "archived", "plan"),
            (FINAL, "2026-12-31", "2026-12-31", 1, "in_progress", "plan"),
        ],
        ("milestone_archived", {"title": "中期检查", "status_before": "in_progress", "sheet_over_decision": "该里程碑已有佐证材料 1 份"}),
    ),
}


def changed_sheet(tmp_path, kind: Kind):
    """The office's sheet: the conflicting change, plus an ordinary one (task 4 reports monthly)."""
    plan = base_plan()
    kind.change(plan)
    task_of(plan, "4")["report_every"] = "每月"
    return sheet(tmp_path, plan)


ORDINARY = ["变更任务 1 项：", "  4 文明校园创建", "      反馈周期：每季度 → 每月"]


@pytest.mark.parametrize("name", list(KINDS))
def test_conflict_is_shown_held_back_and_listed_again(store, tmp_path, name):
    kind = KINDS[name]
    kind.decide(store)
    before = milestones(store, kind.code)
    path = changed_sheet(tmp_path, kind)
    held = [HELD, f"  {kind.code} {kind.title}", f"      {kind.line}", f"  {ACCEPT_HINT}"]
    assert run("import", path, "--dry-run") == [HEAD, *ORDINARY, *held, "未变更任务 3 项。", DRY]
    data = json.loads("\n".join(run("import", path, "--dry-run", "--json")))
    assert data["conflicts"] == {"not_applied": [{"code": kind.code, "title": kind.title, "details": [kind.line]}], "accepted": []}

    # the import applies everything else and keeps what duban decided
    out = run("import", path, "--actor", "领导小组办公室")
    assert out == [HEAD, *ORDINARY, *held, "未变更任务 3 项。", "导入完成；1 项任务与系统中已有决定冲突的变更未应用（见上）。"]
    assert milestones(store, kind.code) == before
    assert [k for k, _actor, _data in import_events(store)] == ["task_updated"]  # task 4 only
    # the same sheet again: nothing else to do, the conflict is listed until the office decides
    again = run("import", path, "--dry-run")
    assert again == [HEAD, *held, "除上述冲突外，与库中现有内容相同，没有需要更新的内容。", DRY]


@pytest.mark.parametrize("name", list(KINDS))
@pytest.mark.parametrize(
    ("accept", "warning"),
    [
        (["--accept", "CODE"], []),
        (["--accept", "9，CODE", "--accept", "CODE"], ["提示：--accept 指定的任务 9 没有与系统中已有决定冲突的变更，已忽略。"]),
        (["--accept-sheet"], []),
    ],
    ids=["accept-code", "accept-list", "accept-sheet"],
)
def test_accepted_conflict_applies_the_sheet_and_records_the_decision_it_overrode(store, tmp_path, name, accept, warning):
    kind = KINDS[name]
    kind.decide(store)
    path = changed_sheet(tmp_path, kind)
    args = [a.replace("CODE", kind.code) for a in accept]
    changed = [f"  {kind.code} {kind.title}", *(f"      {line}" for line in kind.accepted)]
    changed = ["变更任务 2 项：", *changed, *ORDINARY[1:]]
    taken = [TAKEN, f"  {kind.code} {kind.title}", f"      {kind.line}"]
    preview = run("import", path, "--dry-run", *args)
    assert preview == [HEAD, *changed, *taken, "未变更任务 2 项。", *warning, DRY]
    assert run("import", path, "--actor", "领导小组办公室", *args) == [*preview[:-1], "导入完成。"]
    assert [m for m in milestones(store, kind.code) if m[5] == "plan"] == kind.after
    recorded = [(k, data) for k, actor, data in import_events(store) if actor == "领导小组办公室" and "sheet_over_decision" in data]
    assert recorded == [kind.event]
    # the sheet won: importing it again is a no-op
    assert run("import", path, "--dry-run")[-2:] == ["与库中现有内容相同，没有需要更新的内容。", DRY]


def test_unchanged_sheet_keeps_the_approved_extension(store, tmp_path):
    """The field report: the office re-imported its unchanged sheet and the extension went back."""
    extend_task_2(store)
    assert run("import", sheet(tmp_path, base_plan()), "--dry-run") == [HEAD, "与库中现有内容相同，没有需要更新的内容。", DRY]
    run("import", sheet(tmp_path, base_plan()))
    assert milestones(store, "2") == [(FINAL, "2027-01-15", "2026-11-30", 2, "in_progress", "plan")]
    assert import_events(store) == []


def test_sheet_agreeing_with_the_decision_is_recorded_silently(store, tmp_path):
    extend_task_2(store)
    plan = base_plan()
    task_of(plan, "2")["deadline"] = "2027年1月15日"  # the office wrote the approved date into its sheet
    assert run("import", sheet(tmp_path, plan), "--dry-run") == [HEAD, "与库中现有内容相同，没有需要更新的内容。", DRY]
    run("import", sheet(tmp_path, plan))
    assert milestones(store, "2") == [(FINAL, "2027-01-15", "2027-01-15", 2, "in_progress", "plan")]
    with session_scope(store) as s:
        assert s.scalar(select(Task.deadline_text).where(Task.code == "2")) == "2027年1月15日"
    assert import_events(store) == []
    # later the sheet moves the date again: nothing decided since, an ordinary change
    task_of(plan, "2")["deadline"] = "2027年2月28日"
    assert run("import", sheet(tmp_path, plan), "--dry-run")[1:4] == [
        "变更任务 1 项：",
        "  2 建设课程资源库",
        "      完成时限：2027年1月15日 → 2027年2月28日",
    ]


@pytest.mark.parametrize("legacy", [False, True], ids=["sheet-date", "no-sheet-date"])
def test_changed_sheet_without_a_decision_applies_as_before(store, tmp_path, legacy):
    if legacy:  # a row written before sheet_due_date existed: its date is what the sheet said
        with session_scope(store) as s:
            s.execute(update(Milestone).values(sheet_due_date=None))
    plan = base_plan()
    task_of(plan, "2")["deadline"] = "2026年12月20日"
    run("import", sheet(tmp_path, plan))
    assert milestones(store, "2") == [(FINAL, "2026-12-20", "2026-12-20", 2, "assigned", "plan")]
    [(kind, _actor, data)] = [e for e in import_events(store) if e[0] == "milestone_due_changed"]
    assert data == {"from": "2026-11-30", "to": "2026-12-20", "version": 2}


@pytest.mark.parametrize("accept", [[], ["--accept-sheet"]], ids=["plain", "accept-sheet"])
def test_review_follow_up_step_is_never_matched_or_archived(store, tmp_path, accept):
    follow_up = follow_up_on_task_1(store)
    plan = base_plan()
    task_of(plan, "1")["roadmap"] = "2026年11月20日 制定方案；2026年12月15日 中期检查；2026年12月25日 成果汇编"
    out = run("import", sheet(tmp_path, plan), "--dry-run", *accept)
    assert out == [HEAD, "变更任务 1 项：", "  1 集体备课", "      新增里程碑「成果汇编」：2026-12-25", "未变更任务 3 项。", DRY]
    run("import", sheet(tmp_path, plan), *accept)
    # a sheet that drops every step of task 1 still leaves the follow-up step alone
    task_of(plan, "1")["roadmap"] = None
    run("import", sheet(tmp_path, plan), *accept)
    with session_scope(store) as s:
        ms = s.get(Milestone, follow_up)
        assert (ms.title, ms.status, ms.origin, ms.due_date) == ("督查整改：补材料", "in_progress", "review", dt.date(2027, 1, 8))


def test_removed_task_keeps_done_steps_and_evidence(store, tmp_path):
    complete_first_step(store, urls=["https://example.edu.cn/fa"])
    report_on_second_step(store)
    plan = base_plan()
    plan["systems"][0]["projects"][0]["tasks"].pop(0)  # task 1 leaves the list
    out = run("import", sheet(tmp_path, plan), "--dry-run")
    assert out[1:4] == [
        "归档任务（已从清单中删除，历史记录保留） 1 项：",
        "  1 集体备课",
        "      已办结的里程碑 1 个仍为已办结；佐证材料 2 份保留",
    ]
    run("import", sheet(tmp_path, plan))
    assert [(m[0], m[4]) for m in milestones(store, "1")] == [("制定方案", "done"), ("中期检查", "archived"), (FINAL, "archived")]
    with session_scope(store) as s:
        assert len(s.scalars(select(Evidence.id)).all()) == 2  # evidence is never deleted


@pytest.mark.parametrize("suffix", ["yaml", "xlsx"])
def test_export_then_reimport_with_decisions_is_a_no_op(store, tmp_path, suffix):
    extend_task_2(store)
    complete_first_step(store)
    report_on_second_step(store)
    follow_up = follow_up_on_task_1(store)
    before = {code: milestones(store, code) for code in ("1", "2")}
    exported = tmp_path / f"export.{suffix}"
    run("export", "demo", "--out", exported)
    if suffix == "yaml":
        text = exported.read_text(encoding="utf-8")
        assert "督查整改" not in text and "2027-01-15" in text  # duban's dates; the follow-up step stays in duban
    assert run("import", exported, "--dry-run") == [HEAD, "与库中现有内容相同，没有需要更新的内容。", DRY]
    run("import", exported)
    assert import_events(store) == []
    after = {code: milestones(store, code) for code in ("1", "2")}
    # the same rows; the final date of task 2 is now what the sheet says too
    assert after["1"] == before["1"]
    assert after["2"] == [(FINAL, "2027-01-15", "2027-01-15", 2, "in_progress", "plan")]
    with session_scope(store) as s:
        assert s.get(Milestone, follow_up).status == "in_progress"
    # and the round trip again changes nothing at all
    run("export", "demo", "--out", exported)
    assert run("import", exported, "--dry-run") == [HEAD, "与库中现有内容相同，没有需要更新的内容。", DRY]
