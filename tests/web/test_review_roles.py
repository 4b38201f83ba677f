"""Who may approve, judge and read, through the link pages (TestClient) and the library, on SQLite
and PostgreSQL: nobody approves or judges their own task, the leading group decides when the
office has nobody else, and a link ends when its holder no longer holds the role that earned it
(issue 17: a 督查 judge judged their own task; a milestone closed without approval; view and
report links outlived a re-import that changed the 分管校领导)."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkSpec, issue
from duban.models import Event, Milestone, Notification, Person, Plan, Review, ReviewItem, Task
from duban.reviews import api as reviews
from tests.conftest import PINNED_DAY
from tests.factories import task_of
from tests.web_helpers import (
    SECRET,
    csrf_of,
    import_small,
    make_link,
    milestone_id,
    plan_definition,
    requests,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
NO_REVIEWER = (
    "本方案要求办结审核，但目前没有可以审核您申请的人员（领导小组办公室、领导小组均无其他成员）。"
    "本次提交未被受理，请联系领导小组办公室在方案中增补审核人员后再提交。"
)
GONE_VIEW = "您已不再负责或分管该任务，此链接已失效。如有疑问，请联系领导小组办公室。"
GONE_READER = "您已不在本方案的领导小组或领导小组办公室名单中，此链接已失效。如有疑问，请联系领导小组办公室。"
GONE_REVIEWER = "您目前不在本方案的审核人员名单中，此链接已不能使用。如有疑问，请联系领导小组办公室。"


def roles_plan(*, office: list[str], leading_group: list[str], owner_of_1: str = "督办员") -> dict:
    """The small plan with a second office member available, its office and leading group as
    given, and task 1 owned by ``owner_of_1`` (an office member owning a task)."""
    d = plan_definition(approval=True)
    d["people"].append({"name": "督办员二", "title": "督办员", "email": "db2@example.org"})
    d["plan"]["office"], d["plan"]["leading_group"] = office, leading_group
    task_of(d, "1")["owner"] = owner_of_1
    return d


@pytest.fixture
def app_for(use_database, engine, tmp_path, monkeypatch):
    """``app_for(plan)``: the web app (as ``small_plan_app`` sets it up) with that plan imported."""
    from fastapi.testclient import TestClient

    from duban.settings import get_settings
    from duban.web.app import create_app

    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    with contextlib.ExitStack() as stack:

        def make(data: dict) -> TestClient:
            import_small(engine, tmp_path, data=data)
            return stack.enter_context(TestClient(create_app(), raise_server_exceptions=True))

        yield make


def forged_csrf(web, token: str) -> str:
    """The form field a page without a form would have had (a hand-made POST)."""
    from duban.link_tokens import verify
    from duban.web.security import csrf_token

    return csrf_token(SECRET, web.cookies.get("duban_csrf"), int(verify(SECRET, token, today=PINNED_DAY)["l"]))


def reimport(engine, folder, data: dict) -> None:
    import_small(engine, folder, data=data)


# ---------------------------------------------------------------------------------------------
# approvals (finding 2): nobody approves their own; the leading group when the office has nobody else


def test_the_only_office_members_completion_goes_to_the_leading_group(app_for, engine):
    web = app_for(roles_plan(office=["督办员"], leading_group=["党委书记"]))
    ms = milestone_id(engine, "1", 1)
    done = make_link(engine, "督办员", "done", "1", milestone=ms)
    page = web.get(f"/l/{done}")
    resp = web.post(f"/l/{done}", data={"csrf": csrf_of(page.text), "note": "实施方案已印发", "urls": "https://example.org/a"})
    assert resp.status_code == 200 and "已提交办结，等待领导小组办公室审核。" in resp.text
    [req] = requests(engine)
    with session_scope(engine) as s:
        asked = s.scalars(
            select(Person.name).join(Notification, Notification.recipient_id == Person.id).where(Notification.kind == "approval")
        ).all()
        assert (s.get(Milestone, ms).status, asked) == ("submitted", ["党委书记"])
    # the office member cannot approve it from the queue
    queue = make_link(engine, "督办员", "queue", None)
    one = web.get(f"/l/{queue}/r/{req.id}")
    assert "这是您本人提交的申请，请由其他审核人员审核。" in one.text and 'name="decision"' not in one.text
    refused = web.post(f"/l/{queue}/r/{req.id}", data={"csrf": forged_csrf(web, queue), "decision": "approve", "note": ""})
    assert "不能审核自己提交的申请。" in refused.text
    assert requests(engine)[0].status == "pending"
    # the leading group's review link works and approves it
    review = make_link(engine, "党委书记", "review", "1", milestone=ms, request=req.id)
    page = web.get(f"/l/{review}")
    assert page.status_code == 200 and "请审核以下办结申请。" in page.text
    ok = web.post(f"/l/{review}", data={"csrf": csrf_of(page.text), "decision": "approve", "note": ""})
    assert ok.status_code == 200 and "已审核通过，里程碑「制定方案」办结。" in ok.text
    decided_by = requests(engine)[0].decided_by_id
    with session_scope(engine) as s:
        assert (s.get(Milestone, ms).status, s.get(Person, decided_by).name) == ("done", "党委书记")


def test_the_leading_group_decides_only_what_the_office_cannot(app_for, engine):
    """A leading-group member's queue (office of one) does not decide what the office decides."""
    web = app_for(roles_plan(office=["督办员"], leading_group=["党委书记"], owner_of_1="教务处处长"))
    ms = milestone_id(engine, "1", 1)
    done = make_link(engine, "教务处处长", "done", "1", milestone=ms)
    page = web.get(f"/l/{done}")
    web.post(f"/l/{done}", data={"csrf": csrf_of(page.text), "note": "实施方案已印发", "urls": "https://example.org/a"})
    [req] = requests(engine)
    queue = make_link(engine, "党委书记", "queue", None)
    one = web.get(f"/l/{queue}/r/{req.id}")
    assert "该申请由领导小组办公室审核，您不能审核。" in one.text and 'name="decision"' not in one.text
    refused = web.post(f"/l/{queue}/r/{req.id}", data={"csrf": forged_csrf(web, queue), "decision": "approve", "note": ""})
    assert "该申请由领导小组办公室审核，您不能审核。" in refused.text
    assert (requests(engine)[0].status, requests(engine)[0].decided_by_id) == ("pending", None)


@pytest.mark.parametrize("leading_group", [[], ["督办员"]], ids=["no-leading-group", "leading-group-is-the-submitter"])
def test_a_completion_nobody_else_could_approve_is_refused(app_for, engine, leading_group):
    web = app_for(roles_plan(office=["督办员"], leading_group=leading_group))
    ms = milestone_id(engine, "1", 1)
    done = make_link(engine, "督办员", "done", "1", milestone=ms)
    page = web.get(f"/l/{done}")
    before = snapshot(engine)
    resp = web.post(f"/l/{done}", data={"csrf": csrf_of(page.text), "note": "实施方案已印发", "urls": "https://example.org/a"})
    assert resp.status_code == 400 and NO_REVIEWER in resp.text
    assert snapshot(engine) == before  # nothing written: the step is still open, the link unused


# ---------------------------------------------------------------------------------------------
# verdicts (finding 1): nobody judges their own task


def start_review(engine, codes=("1", "2")) -> tuple[int, dict[str, int]]:
    """A review of ``codes``, requests out, every owner answered; (review id, item id by code)."""
    with session_scope(engine) as s:
        rid = reviews.create(
            s,
            plan_code=None,
            scope_kind="tasks",
            scope_values=list(codes),
            reply_by=dt.date(2026, 12, 4),
            ask="请报告推进情况。",
            today=dt.date(2026, 11, 23),
            started_by="督办员",
        ).id
    with session_scope(engine) as s:
        reviews.send_requests(s, s.get(Review, rid), today=dt.date(2026, 11, 23), now=NOW)
    with session_scope(engine) as s:
        rows = s.execute(select(ReviewItem, Task.code).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == rid)).all()
        found = {code: item.id for item, code in rows}
        for item, _ in rows:
            reviews.record_answer(
                s,
                item,
                person=s.get(Person, item.owner_id),
                done="已完成",
                problems="",
                next_steps="继续推进",
                urls=["https://example.org/a"],
                files=[],
                now=NOW,
                today=dt.date(2026, 11, 24),
            )
    return rid, found


def verdict_link(engine, person: str, rid: int) -> str:
    expires = PINNED_DAY + dt.timedelta(days=60)
    with session_scope(engine) as s:
        plan_id, pid = s.scalar(select(Plan.id)), s.scalar(select(Person.id).where(Person.name == person))
        [lid] = issue(s, [LinkSpec(plan_id, pid, "review_verdict", None, None, expires, review_id=rid)], secret=SECRET, today=PINNED_DAY)
    return link_token(SECRET, lid, "review_verdict", expires)


def judged(engine, rid: int) -> dict[str, tuple[str | None, str | None]]:
    with session_scope(engine) as s:
        rows = s.execute(select(Task.code, ReviewItem.verdict, ReviewItem.verdict_by).join(Task, Task.id == ReviewItem.task_id))
        verdicts = {code: (v, by) for code, v, by in rows}
        assert s.scalars(select(Event.actor).where(Event.kind == "review_judged")).all() == [
            by for _, (v, by) in sorted(verdicts.items()) if v
        ]
        return verdicts


@pytest.mark.parametrize(
    ("office", "leading_group", "other", "message"),
    [
        (["督办员", "督办员二"], ["党委书记"], "督办员二", "不能评定自己负责的任务（任务 1），请由领导小组办公室其他成员评定。"),
        (["督办员"], ["党委书记"], "党委书记", "不能评定自己负责的任务（任务 1），请由领导小组评定。"),
    ],
    ids=["another-office-member", "the-leading-group"],
)
def test_an_office_member_cannot_judge_their_own_task(app_for, engine, office, leading_group, other, message):
    web = app_for(roles_plan(office=office, leading_group=leading_group))
    rid, items = start_review(engine)
    rv = f"/rv/{verdict_link(engine, '督办员', rid)}"
    page = web.get(rv)
    assert page.status_code == 200
    # the page: no form for the own task, a line saying who judges it; the other task's form is there
    assert f'<p class="alert info not-judgeable">{message}</p>' in page.text
    assert f'action="{rv}/items/{items["1"]}"' not in page.text and f'action="{rv}/items/{items["2"]}"' in page.text
    refused = web.post(f"{rv}/items/{items['1']}", data={"csrf": csrf_of(page.text), "verdict": "达标", "note": ""})
    assert refused.status_code == 400 and f"任务评定未保存：{message}" in refused.text
    assert judged(engine, rid) == {"1": (None, None), "2": (None, None)}  # nothing written
    # the task is judged by the one the message names, through their own verdict link
    rv2 = f"/rv/{verdict_link(engine, other, rid)}"
    page2 = web.get(rv2)
    assert f'action="{rv2}/items/{items["1"]}"' in page2.text
    ok = web.post(f"{rv2}/items/{items['1']}", data={"csrf": csrf_of(page2.text), "verdict": "达标", "note": ""})
    assert ok.status_code == 200 and "任务 1 评定为「达标」。" in ok.text
    assert judged(engine, rid) == {"1": ("达标", other), "2": (None, None)}


def test_the_leading_group_is_asked_for_verdicts_and_judges_only_the_office_members_task(app_for, engine):
    web = app_for(roles_plan(office=["督办员"], leading_group=["党委书记"]))
    rid, items = start_review(engine)
    with session_scope(engine) as s:
        asked = s.scalars(
            select(Person.name)
            .join(Notification, Notification.recipient_id == Person.id)
            .where(Notification.kind == "review_verdicts")
            .order_by(Person.name)
        ).all()
    assert asked == ["党委书记", "督办员"]  # the last answer closed the answers: both judges were asked
    rv = f"/rv/{verdict_link(engine, '党委书记', rid)}"
    page = web.get(rv)
    assert '<p class="alert info not-judgeable">任务 2 由领导小组办公室评定，您不能评定。</p>' in page.text
    refused = web.post(f"{rv}/items/{items['2']}", data={"csrf": csrf_of(page.text), "verdict": "达标", "note": ""})
    assert refused.status_code == 400 and "任务 2 由领导小组办公室评定，您不能评定。" in refused.text
    assert judged(engine, rid) == {"1": (None, None), "2": (None, None)}


@pytest.mark.parametrize(
    ("actor", "judge", "outcome"),
    [
        ("督办员", None, "不能评定自己负责的任务（任务 1），请由领导小组评定。"),  # the CLI's --by names the owner
        ("领导小组办公室", "督办员", "不能评定自己负责的任务（任务 1），请由领导小组评定。"),  # a link's holder
        ("领导小组办公室", "教务处副处长", "任务 1 由领导小组评定，您不能评定。"),  # not a judge at all
        ("领导小组办公室", None, "任务 1 评定为「达标」。"),  # the CLI's default: not a person of the plan
        ("党委书记", "党委书记", "任务 1 评定为「达标」。"),
    ],
    ids=["cli-names-the-owner", "link-of-the-owner", "link-of-no-judge", "cli-default", "link-of-the-leading-group"],
)
def test_give_verdict_refuses_the_tasks_owner(use_database, engine, tmp_path, actor, judge, outcome):
    import_small(engine, tmp_path, data=roles_plan(office=["督办员"], leading_group=["党委书记"]))
    rid, _ = start_review(engine)
    with session_scope(engine) as s:
        judge_id = s.scalar(select(Person.id).where(Person.name == judge)) if judge else None
        verdict = reviews.TaskVerdict("1", "达标")
        try:
            message = reviews.give_verdict(
                s, s.get(Review, rid), verdict, actor=actor, now=NOW, today=PINNED_DAY, judge_id=judge_id
            ).message
        except reviews.ReviewError as err:
            message = str(err)
    assert message == outcome
    assert judged(engine, rid)["1"] == (("达标", actor) if outcome.endswith("「达标」。") else (None, None))


# ---------------------------------------------------------------------------------------------
# links that follow roles (finding 3)


def with_changes(d: dict, change: str) -> dict:
    depts = {x["name"]: x for x in d["departments"]}
    people = {p["name"]: p for p in d["people"]}
    if change == "supervisor":  # 教务处 is now supervised by 党委书记
        depts["教务处"]["supervisor"] = "党委书记"
    elif change == "head":  # a new head of 教务处, who manages the deputy now
        d["people"].append({"name": "教务处新处长", "department": "教务处", "title": "处长", "email": "new@example.org"})
        depts["教务处"]["head"] = "教务处新处长"
        people["教务处副处长"]["manager"] = "教务处新处长"
    elif change == "leading_group":
        d["plan"]["leading_group"] = ["分管教学副校长"]
    elif change == "office":
        d["plan"]["office"] = ["督办员二"]
    return d


BASE = {"office": ["督办员"], "leading_group": ["党委书记"], "owner_of_1": "教务处处长"}


@pytest.mark.parametrize(
    ("holder", "action", "code", "change", "refusal"),
    [
        ("分管教学副校长", "view", "2", "supervisor", GONE_VIEW),  # escalated to the 分管校领导
        ("教务处处长", "view", "2", "head", GONE_VIEW),  # escalated to the department head
        ("党委书记", "review_report", None, "leading_group", GONE_READER),
        ("督办员", "review_report", None, "office", GONE_READER),
        ("督办员", "queue", None, "office", GONE_REVIEWER),
        ("督办员", "review_verdict", None, "office", GONE_REVIEWER),
        # the role is unchanged: the link still works
        ("分管教学副校长", "view", "2", "head", None),
        ("教务处处长", "view", "2", "supervisor", None),
        ("党委书记", "review_report", None, "office", None),
        ("督办员", "review_verdict", None, "leading_group", None),
    ],
    ids=[
        "view-supervisor-changed",
        "view-head-changed",
        "report-leading-group-changed",
        "report-office-changed",
        "queue-office-changed",
        "verdict-office-changed",
        "view-kept",
        "view-kept-by-the-head",
        "report-kept",
        "verdict-kept",
    ],
)
def test_links_end_when_the_holder_no_longer_holds_the_role(app_for, engine, tmp_path, holder, action, code, change, refusal):
    web = app_for(roles_plan(**BASE))
    rid, _ = start_review(engine)
    expires = PINNED_DAY + dt.timedelta(days=60)
    with session_scope(engine) as s:
        plan_id, pid = s.scalar(select(Plan.id)), s.scalar(select(Person.id).where(Person.name == holder))
        tid = s.scalar(select(Task.id).where(Task.code == code)) if code else None
        review = rid if action in ("review_report", "review_verdict") else None
        [lid] = issue(s, [LinkSpec(plan_id, pid, action, tid, None, expires, review_id=review)], secret=SECRET, today=PINNED_DAY)
    path = f"/l/{link_token(SECRET, lid, action, expires)}"
    before = web.get(path, follow_redirects=True)
    assert before.status_code == 200 and "链接已失效" not in before.text
    reimport(engine, tmp_path, with_changes(roles_plan(**BASE), change))
    after = web.get(path, follow_redirects=True)
    if refusal is None:
        assert after.status_code == 200 and "链接已失效" not in after.text and "不能使用" not in after.text
    else:
        assert after.status_code == (403 if action in ("queue", "review_verdict") else 410) and refusal in after.text
        assert "给我发送新链接" not in after.text  # no fresh link for a role that is gone


def test_a_fresh_link_is_not_sent_for_a_role_that_is_gone(use_database, engine, tmp_path):
    """Asking for a fresh link (an expired view link) after the role changed sends nothing."""
    from duban.action_common import ActionError, Origin
    from duban.models import Link
    from duban.relink import request_new_link

    import_small(engine, tmp_path, data=roles_plan(**BASE))
    tok = make_link(engine, "分管教学副校长", "view", "2", expires=PINNED_DAY - dt.timedelta(days=1))
    reimport(engine, tmp_path, with_changes(roles_plan(**BASE), "supervisor"))
    with session_scope(engine) as s:
        link = s.scalars(select(Link).where(Link.action == "view")).one()
        with pytest.raises(ActionError, match="该任务已不由您负责或已归档"):
            request_new_link(s, link, Origin(channel="web"), now=NOW, today=PINNED_DAY)
    assert tok.count(".") == 1
