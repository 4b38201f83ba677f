"""Reviews (督查) in the store and their rules, on SQLite and PostgreSQL (duban.reviews, duban.rules.reviews)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkSpec, issue
from duban.models import Link, Milestone, Notification, Person, Review, ReviewItem, Task
from duban.reviews import api as reviews
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import TaskView
from duban.rules.policy import DEFAULT_POLICY
from duban.rules.reviews import ReviewItemView, answers_closed, decide_item
from duban.sweep import decisions
from notifications.digest import describe
from tests.conftest import EXAMPLE_YAML
from tests.factories import import_announced

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
START, REPLY_BY = dt.date(2026, 11, 23), dt.date(2026, 12, 4)
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)

# ---------------------------------------------------------------------------------------------
# the rule (pure)

VIEW = ReviewItemView(
    item_id=7,
    review_id=3,
    review_title="课程育人专项督查",
    requested_on=START,
    reply_by=REPLY_BY,
    task=TaskView(id=11, plan_id=1, code="01.1.2", title="集体备课", owner_id=100, head_id=200, supervisor_id=300, office_ids=(400, 401)),
)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 11, 23), []),  # the request itself went out today
        (dt.date(2026, 11, 25), [("review_reminder", 100, 0, 7)]),  # 7 working days left
        (dt.date(2026, 12, 1), [("review_reminder", 100, 0, 3)]),
        (dt.date(2026, 12, 4), [("review_reminder", 100, 0, 0)]),
        (dt.date(2026, 12, 7), [("review_overdue", 100, 0, -1)]),
        (dt.date(2026, 12, 9), [("review_overdue", 100, 0, -3), ("review_escalation", 200, 1, -3)]),
        (dt.date(2026, 12, 15), [("review_overdue", 100, 0, -7), ("review_escalation", 200, 1, -7), ("review_escalation", 300, 2, -7)]),
        (
            dt.date(2026, 12, 25),
            [
                ("review_overdue", 100, 0, -15),
                ("review_escalation", 200, 1, -15),
                ("review_escalation", 300, 2, -15),
                ("review_escalation", 400, 3, -15),
                ("review_escalation", 401, 3, -15),
            ],
        ),
    ],
)
def test_missing_answers_follow_the_deadline_ladder(today, expected):
    got = decide_item(VIEW, DEFAULT_POLICY, CAL, today)
    assert [(d.kind, d.recipient_id, d.level, d.days) for d in got] == expected
    assert all(d.key.startswith(("review_reminder:rv3i7:", "review_overdue:rv3i7:", "review_escalation:rv3i7:")) for d in got)


def test_no_message_once_answered_or_closed_and_reminders_only_after_the_request():
    import dataclasses

    assert decide_item(dataclasses.replace(VIEW, answered=True), DEFAULT_POLICY, CAL, dt.date(2026, 12, 15)) == []
    assert decide_item(dataclasses.replace(VIEW, closed=True), DEFAULT_POLICY, CAL, dt.date(2026, 12, 15)) == []
    short = dataclasses.replace(VIEW, requested_on=dt.date(2026, 12, 1))  # 3 working days to answer: no "7 days left"
    assert [(d.kind, d.days) for d in decide_item(short, DEFAULT_POLICY, CAL, dt.date(2026, 12, 1))] == []
    assert [(d.kind, d.days) for d in decide_item(short, DEFAULT_POLICY, CAL, dt.date(2026, 12, 3))] == [("review_reminder", 1)]
    assert answers_closed(today=REPLY_BY, reply_by=REPLY_BY, unanswered=1) is False
    assert answers_closed(today=REPLY_BY + dt.timedelta(days=1), reply_by=REPLY_BY, unanswered=1) is True
    assert answers_closed(today=START, reply_by=REPLY_BY, unanswered=0) is True


@pytest.mark.parametrize(
    ("kind", "level", "days", "data", "line"),
    [
        (
            "review_request",
            0,
            0,
            {"ask": "请报告推进情况。"},
            "「课程育人专项督查」请您于 2026-12-04 前填报该任务的已完成工作、佐证材料、存在问题和下一步计划（督查要求：请报告推进情况）",
        ),
        ("review_reminder", 0, 3, {}, "「课程育人专项督查」填报截止 2026-12-04，还有 3 个工作日，请按时填报"),
        ("review_overdue", 0, -2, {}, "「课程育人专项督查」填报截止 2026-12-04，已逾期 2 个工作日仍未填报，请尽快填报"),
        (
            "review_escalation",
            2,
            -7,
            {"owner": "教务处教学科科长"},
            "分管校领导督办：「课程育人专项督查」责任人 教务处教学科科长 未按期填报（截止 2026-12-04），已逾期 7 个工作日，请督促填报",
        ),
        (
            "review_verdicts",
            0,
            0,
            {"items": 12, "answered": 3},
            "「课程育人专项督查」填报已结束（3/12 项已填报），请逐项评定（达标 / 基本达标 / 需整改）",
        ),
    ],
)
def test_digest_lines_of_review_items(kind, level, days, data, line):
    assert describe(kind, level, REPLY_BY, days, {"review_title": "课程育人专项督查", "reply_by": "2026-12-04", **data}) == line


# ---------------------------------------------------------------------------------------------
# the store


@pytest.fixture
def plan(engine):
    import_announced(engine, EXAMPLE_YAML, now=dt.datetime(2026, 11, 20, 17, 0, tzinfo=TZ))
    return engine


def start(engine, kind="system", values=("课程育人",), **kw) -> int:
    with session_scope(engine) as s:
        return reviews.create(
            s,
            plan_code=None,
            scope_kind=kind,
            scope_values=list(values),
            reply_by=kw.get("reply_by", REPLY_BY),
            ask="请报告推进情况。",
            today=START,
            started_by="督办员（教学线）",
        ).id


@pytest.mark.parametrize(
    ("kind", "values", "count", "first"),
    [
        ("system", ["课程育人"], 12, "01.1.1"),
        ("system", ["01"], 12, "01.1.1"),
        ("department", ["马克思主义学院"], 8, "01.1.1"),
        ("supervisor", ["分管教学副校长"], 32, "01.1.1"),
        ("tasks", ["01.2.2", "01.1.1"], 2, "01.1.1"),
    ],
)
def test_scopes(plan, kind, values, count, first):
    with session_scope(plan) as s:
        tasks = reviews.scope_tasks(s, reviews.plan_by_code(s, None), kind, values)
    assert (len(tasks), tasks[0].code) == (count, first)


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        ("system", ["体育育人"], "方案中没有名为“体育育人”的育人体系。已有：课程育人、"),
        ("department", ["财务部"], "方案中没有名为“财务部”的牵头单位。"),
        ("tasks", ["99.9.9"], "方案中没有编号为 99.9.9 的任务（或已归档）。"),
        ("region", ["x"], "督查范围“region”不正确"),
    ],
)
def test_unknown_scope_names_are_one_clear_message(plan, kind, values, message):
    with session_scope(plan) as s, pytest.raises(reviews.ReviewError) as err:
        reviews.scope_tasks(s, reviews.plan_by_code(s, None), kind, values)
    assert message in str(err.value)


def test_reply_by_must_be_later_than_today(plan):
    with pytest.raises(reviews.ReviewError, match="应晚于今天"):
        start(plan, reply_by=START)


def items(engine, review_id):
    with session_scope(engine) as s:
        return {
            code: (item.id, item.owner_id)
            for item, code in s.execute(
                select(ReviewItem, Task.code).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == review_id)
            )
        }


def answer(engine, item_id, today=dt.date(2026, 11, 24), **kw):
    with session_scope(engine) as s:
        item = s.get(ReviewItem, item_id)
        return reviews.record_answer(
            s,
            item,
            person=s.get(Person, kw.pop("person", item.owner_id)),
            done=kw.get("done", "已完成"),
            problems="",
            next_steps=kw.get("next_steps", "继续推进"),
            urls=["https://example.org/a"],
            files=[],
            now=NOW,
            today=today,
        )


def test_requests_once_answers_and_the_last_answer_closes_the_answers(plan, tmp_path):
    rid = start(plan, "tasks", ["01.1.1", "01.1.2"])
    first = reviews.advance(plan, rid, today=START, reports_dir=tmp_path)
    again = reviews.advance(plan, rid, today=START, reports_dir=tmp_path)
    assert (first.status, len(first.recipients), again.recipients) == ("open", 2, set())
    its = items(plan, rid)
    with pytest.raises(reviews.ReviewError, match="请填写已完成工作"):
        answer(plan, its["01.1.1"][0], done="  ")
    with pytest.raises(reviews.ReviewError, match="不由您填报"):
        answer(plan, its["01.1.1"][0], person=its["01.1.2"][1])
    out = answer(plan, its["01.1.1"][0])
    assert (out.wake, out.message) == (False, "已收到您的督查填报，感谢您的配合。评定前如需补充，可再次打开此链接修改。")
    assert answer(plan, its["01.1.1"][0]).message.startswith("已修改您的督查填报内容。")
    late = answer(plan, its["01.1.2"][0], today=dt.date(2026, 12, 7))
    assert late.wake and "本次为逾期填报" in late.message and len(late.notify) == 3  # the office is asked for verdicts
    with session_scope(plan) as s:
        review = s.get(Review, rid)
        assert (review.status, review.answers_closed_on) == ("waiting_verdicts", dt.date(2026, 12, 7))
        task = s.scalar(select(Task).where(Task.code == "01.1.1"))
        assert task.acknowledged_at is not None  # answering counts as 签收
        kinds = sorted(s.scalars(select(Notification.kind).where(Notification.plan_id == review.plan_id)))
    assert kinds.count("review_request") == 2 and kinds.count("review_verdicts") == 3
    # an answer is also the task's 反馈 for the period: the sweep and the roll-up see it
    with session_scope(plan) as s:
        views = {v.code: v for v, _ in decisions.load(s, tz=TZ).tasks}
    assert (views["01.1.1"].last_report_on, views["01.1.2"].last_report_on) == (dt.date(2026, 11, 24), dt.date(2026, 11, 24))


def test_verdicts_follow_ups_and_changing_a_verdict(plan, tmp_path):
    rid = start(plan, "tasks", ["01.1.1", "01.1.2"])
    its = items(plan, rid)
    answer(plan, its["01.1.1"][0])
    today = dt.date(2026, 11, 25)

    def judge(code, verdict, **kw):
        with session_scope(plan) as s:
            return reviews.give_verdict(
                s, s.get(Review, rid), reviews.TaskVerdict(code, verdict, **kw), actor="督办员（教学线）", now=NOW, today=today
            )

    with pytest.raises(reviews.ReviewError, match="尚未填报"):
        judge("01.1.2", "达标")  # the review is still open and this owner has not answered
    with pytest.raises(reviews.ReviewError, match="评定结果“优秀”不正确"):
        judge("01.1.1", "优秀")
    with pytest.raises(reviews.ReviewError, match="请填写评定意见"):
        judge("01.1.1", "需整改")
    with pytest.raises(reviews.ReviewError, match="请填写晚于今天"):
        judge("01.1.1", "需整改", note="不足", follow_up_title="补材料", follow_up_due=today)
    with pytest.raises(reviews.ReviewError, match="没有名为“张三”的人员"):
        judge("01.1.1", "需整改", note="不足", follow_up_title="补材料", follow_up_due=dt.date(2027, 1, 8), follow_up_owner="张三")
    out = judge("01.1.1", "需整改", note="不足", follow_up_title="补材料", follow_up_due=dt.date(2027, 1, 8))
    assert out.notify and not out.wake
    with session_scope(plan) as s:
        ms = s.scalar(select(Milestone).where(Milestone.title == "督查整改：补材料"))
        assert (ms.due_date, ms.status, ms.is_final) == (dt.date(2027, 1, 8), "in_progress", False)
        ms_id = ms.id
    judge("01.1.1", "基本达标")  # changed before the review closed: the follow-up step is archived
    with session_scope(plan) as s:
        assert s.get(Milestone, ms_id).status == "archived"
        assert s.scalar(select(ReviewItem.follow_up_milestone_id).where(ReviewItem.id == its["01.1.1"][0])) is None
    # the reply-by date passes: the non-responder can be judged, and the last verdict closes the review
    tick = reviews.tick(plan, today=dt.date(2026, 12, 7), cal=CAL, tz=TZ)
    assert tick.changed == [rid]
    out = judge(
        "01.1.2", "需整改", note="未报", follow_up_title="补报", follow_up_due=dt.date(2027, 1, 8), follow_up_owner="马克思主义学院院长"
    )
    assert not out.wake  # the last verdict closes nothing: the office's explicit step does
    assert reviews.advance(plan, rid, today=dt.date(2026, 12, 8), reports_dir=tmp_path).status == "waiting_verdicts"
    with session_scope(plan) as s:
        done = reviews.close_review(s, rid, actor="督办员", now=NOW, today=dt.date(2026, 12, 8), reports_dir=tmp_path)
        assert s.get(Review, rid).report_xlsx.endswith(f"督查报告-{rid}.xlsx")
    assert "督查报告已生成并报送" in done.message and done.wake
    with pytest.raises(reviews.ReviewError, match="已完成并已生成报告"):
        judge("01.1.1", "达标")


def test_cancel_voids_the_links_and_tells_who_was_still_asked(plan):
    rid = start(plan, "tasks", ["01.1.1", "01.1.2"])
    its = items(plan, rid)
    answer(plan, its["01.1.1"][0])
    with session_scope(plan) as s:
        plan_id = s.get(Review, rid).plan_id
        [lid] = issue(
            s,
            [LinkSpec(plan_id, its["01.1.2"][1], "review_answer", None, None, dt.date(2027, 1, 1), review_item_id=its["01.1.2"][0])],
            secret="s" * 40,
            today=START,
        )
        out = reviews.cancel(s, rid, actor="督办员（教学线）", reason="并入全面督查", now=NOW, today=START)
    assert out.notify == {its["01.1.2"][1]}
    with session_scope(plan) as s:
        assert s.get(Link, lid).void_reason == "督查已撤销"
        assert s.get(Review, rid).status == "cancelled"
        with pytest.raises(reviews.ReviewError, match="已撤销"):
            reviews.cancel(s, rid, actor="x", reason="", now=NOW, today=START)
    with pytest.raises(reviews.ReviewError, match="本次督查已结束"):
        answer(plan, its["01.1.2"][0])
    assert reviews.tick(plan, today=dt.date(2026, 12, 15), cal=CAL, tz=TZ).new == 0  # no reminder about a cancelled review
