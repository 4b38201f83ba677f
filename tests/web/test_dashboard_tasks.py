"""The dashboard's task page (duban/web/dashboard_tasks.py): what it shows, who may see it, 领导批示
and 催办 reaching the owner, and the office's edits (reassign, move a date, archive) — recorded as
events and held back by a re-import whose sheet differs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Event, Milestone, Notification, Person, Task
from duban.plans.importer import import_plan
from duban.runtime import runtime
from duban.sweep.sending import send_to
from duban.vocabulary import EventKind, MessageKind, MilestoneState
from tests.conftest import PINNED, PINNED_DAY
from tests.factories import task_of, write_yaml
from tests.web.test_dashboard import add_account, assert_private, login, web  # noqa: F401  (the fixture)
from tests.web_helpers import CRITERIA, STATEMENT, plan_definition

pytestmark = pytest.mark.usefixtures("clock")
PAGE = "/dashboard/tasks/demo/1"
NOT_FOUND = "没有找到该任务，或您的账户无权查看该任务。"


def token(html: str, action: str) -> str:
    m = re.search(rf'action="{PAGE}/{action}">\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"', html)
    assert m, f"no {action} form"
    return m.group(1)


def as_office(client, engine, login_name: str = "dby") -> None:
    add_account(engine, login_name, "office", "demo", person="督办员")
    login(client, login_name)


def post(client, action: str, **fields: str):
    return client.post(f"{PAGE}/{action}", data={"csrf": token(client.get(PAGE).text, action), **fields})


def person_id(engine, name: str) -> int:
    with session_scope(engine, readonly=True) as s:
        return int(s.scalar(select(Person.id).where(Person.name == name)))


def events(engine, kind: EventKind) -> list[tuple[str, str, dict]]:
    with session_scope(engine, readonly=True) as s:
        return [(e.actor, e.channel, e.data) for e in s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id))]


def items(engine, kind: MessageKind) -> list[tuple[str, str]]:
    with session_scope(engine, readonly=True) as s:
        rows = s.execute(
            select(Notification.key, Person.name).join(Person, Person.id == Notification.recipient_id).where(Notification.kind == kind)
        )
        return [(k, n) for k, n in rows]


def test_the_task_page_shows_the_task_book_roadmap_owner_state_and_history(web, engine):  # noqa: F811
    as_office(web, engine)
    page = web.get(PAGE)
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    for shown in (
        "<h1>集体备课</h1>",
        "当前状态：<strong>待签收</strong>",
        STATEMENT,
        CRITERIA,
        "<dt>完成时限</dt><dd>2026年12月底前</dd>",
        "<dt>牵头单位</dt><dd>教务处</dd>",
        "<dt>配合单位</dt><dd>宣传部</dd>",
        "<dt>分管校领导</dt><dd>分管教学副校长</dd>",
        "<dt>姓名</dt><dd>教务处处长（处长）</dd>",
        '<a href="tel:13800000001">13800000001</a>',
        '<a href="mailto:jwc@example.org">jwc@example.org</a>',
        "完成时间 2026-11-20（已逾期）",
        "完成时间 2026-12-15",
        '<span class="h-label">下达任务</span>',
        "领导小组办公室（导入）",
    ):
        assert shown in page.text, shown
    assert "root" not in page.text


@pytest.mark.parametrize("where", ["/dashboard?plan=demo", "/dashboard/search?q=集体"])
def test_dashboard_rows_and_search_results_lead_to_the_task_page(web, engine, where):  # noqa: F811
    as_office(web, engine)
    assert f'href="{PAGE}"' in web.get(where).text


@pytest.mark.parametrize("path", [PAGE, "/dashboard/tasks/demo/99", "/dashboard/tasks/nope/1"])
def test_another_plans_account_learns_nothing(web, engine, path):  # noqa: F811
    add_account(engine, "ws", "office", "other")
    login(web, "ws")
    page = web.get(path)
    assert page.status_code == 404 and NOT_FOUND in page.text
    assert_private(page.text, ["集体备课", "教务处处长", "jwc@example.org", "测试方案"])
    refused = web.post(f"{PAGE}/urge", data={"csrf": "0" * 40})
    assert refused.status_code == 404 and items(engine, MessageKind.URGED) == []


def test_statistics_accounts_and_strangers_see_no_task(web, engine):  # noqa: F811
    assert web.get(PAGE).status_code == 303  # to /login
    add_account(engine, "tj", "viewer", "demo")
    login(web, "tj")
    page = web.get(PAGE)
    assert page.status_code == 403 and "只读统计账户" in page.text
    assert_private(page.text, ["集体备课", "教务处处长"])


def test_a_leaders_instruction_reaches_the_owner(web, engine):  # noqa: F811
    add_account(engine, "sj", "leader", "demo", person="党委书记")
    login(web, "sj")
    page = web.get(PAGE)
    assert 'id="instruction"' in page.text and f"{PAGE}/urge" not in page.text  # a leader instructs, does not edit
    done = post(web, "instruction", text="请于月底前拿出方案，学校全力支持。")
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?ok=instruction"
    assert "批示已记录，并已通知责任人。" in web.get(done.headers["location"]).text
    assert events(engine, EventKind.INSTRUCTION) == [("党委书记", "web", {"text": "请于月底前拿出方案，学校全力支持。"})]
    [(key, to)] = items(engine, MessageKind.INSTRUCTION)
    assert to == "教务处处长" and key.startswith("instruction:")
    rt = runtime()
    send_to(rt, {person_id(engine, "教务处处长")}, today=PINNED_DAY)
    [mail] = (rt.settings.outbox_path / PINNED_DAY.isoformat()).glob("*教务处处长*.txt")
    assert "党委书记 同志对该任务作出批示：请于月底前拿出方案，学校全力支持。" in mail.read_text(encoding="utf-8")
    assert "发给 教务处处长 · 本地发件箱 · 已发送" in web.get(PAGE).text


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "请填写批示内容。"), ("批" * 501, "批示内容不能超过 500 个字（现有 501 个字），请精简后再提交。")],
)
def test_an_instruction_needs_text_within_500_characters(web, engine, text, message):  # noqa: F811
    as_office(web, engine)
    page = post(web, "instruction", text=text)
    assert page.status_code == 400 and message in page.text
    assert events(engine, EventKind.INSTRUCTION) == [] and items(engine, MessageKind.INSTRUCTION) == []


def test_an_expired_form_changes_nothing(web, engine):  # noqa: F811
    as_office(web, engine)
    page = web.post(f"{PAGE}/instruction", data={"csrf": "0" * 40, "text": "批示"})
    assert page.status_code == 403 and "页面已过期" in page.text
    assert events(engine, EventKind.INSTRUCTION) == []


@pytest.mark.parametrize("role", ["leader", "viewer"])
def test_only_the_office_urges_and_edits(web, engine, role):  # noqa: F811
    add_account(engine, "x", role, "demo")
    login(web, "x")
    for action in ("urge", "reassign", "move", "archive"):
        page = web.post(f"{PAGE}/{action}", data={"csrf": "0" * 40, "reason": "x", "confirm": "yes"})
        assert page.status_code == 403, action
    assert events(engine, EventKind.URGED) == [] and events(engine, EventKind.OFFICE_ARCHIVED) == []


def test_urging_once_a_day(web, engine, clock):  # noqa: F811
    as_office(web, engine)
    first = post(web, "urge", text="请本周内报送进展")
    assert first.status_code == 303 and "已向责任人发出催办提醒。" in web.get(first.headers["location"]).text
    again = post(web, "urge")
    assert again.status_code == 400
    assert "今天 10:00 已由督办员催办过该任务，责任人已收到提醒。同一任务每天只催办一次，请明天再催办。" in again.text
    assert [to for _, to in items(engine, MessageKind.URGED)] == ["教务处处长"]
    clock.move_to(PINNED + dt.timedelta(days=1))
    login(web, "dby")  # the session of yesterday has ended
    assert post(web, "urge").status_code == 303
    keys = [k for k, _ in items(engine, MessageKind.URGED)]
    assert len(keys) == 2 and all(k.startswith("urge:") for k in keys) and len(set(keys)) == 2
    assert [(a, c) for a, c, _ in events(engine, EventKind.URGED)] == [("督办员", "web"), ("督办员", "web")]


def test_reassigning_announces_the_task_to_the_new_owner(web, engine):  # noqa: F811
    as_office(web, engine)
    new = person_id(engine, "教务处副处长")
    unconfirmed = post(web, "reassign", person=str(new))
    assert unconfirmed.status_code == 400 and "请勾选确认后再提交" in unconfirmed.text
    done = post(web, "reassign", person=str(new), reason="工作分工调整", confirm="yes")
    assert done.status_code == 303
    with session_scope(engine, readonly=True) as s:
        t = s.scalar(select(Task).where(Task.code == "1", Task.plan_id == 1))
        assert (t.owner_id, t.acknowledged_at is None, t.announced_at is not None) == (new, True, True)
    [(actor, channel, data)] = events(engine, EventKind.OFFICE_REASSIGNED)
    assert (actor, channel, data["from"], data["to"], data["reason"]) == ("督办员", "web", "教务处处长", "教务处副处长", "工作分工调整")
    assert [to for _, to in items(engine, MessageKind.ASSIGNMENT)] == ["教务处副处长"]
    page = web.get(PAGE).text
    assert "<dt>姓名</dt><dd>教务处副处长（副处长）</dd>" in page and "教务处处长 → 教务处副处长。理由：工作分工调整" in page


def test_moving_a_date_keeps_the_baseline_and_needs_a_reason(web, engine):  # noqa: F811
    with session_scope(engine, readonly=True) as s:
        step = s.scalar(select(Milestone.id).join(Task).where(Task.code == "1", Task.plan_id == 1, Milestone.seq == 1))
    as_office(web, engine)
    missing = post(web, "move", milestone=str(step), due="2026-12-05", reason="")
    assert missing.status_code == 400 and "请填写调整理由。" in missing.text
    assert post(web, "move", milestone=str(step), due="2026-12-05", reason="教材延期到货").status_code == 303
    with session_scope(engine, readonly=True) as s:
        m = s.get(Milestone, step)
        assert (m.due_date, m.baseline_due_date, m.due_version, m.sheet_due_date) == (
            dt.date(2026, 12, 5),
            dt.date(2026, 11, 20),
            2,
            dt.date(2026, 11, 20),
        )
    assert '完成时间 2026-12-05<span class="muted">，原定 2026-11-20</span>' in web.get(PAGE).text
    assert [(a, d["from"], d["to"], d["reason"]) for a, _, d in events(engine, EventKind.OFFICE_DUE_MOVED)] == [
        ("督办员", "2026-11-20", "2026-12-05", "教材延期到货")
    ]


def test_archiving_needs_a_reason_and_a_confirmation(web, engine):  # noqa: F811
    as_office(web, engine)
    assert post(web, "archive", reason="并入任务 2", confirm="").status_code == 400
    assert post(web, "archive", reason="", confirm="yes").status_code == 400
    assert post(web, "archive", reason="并入任务 2", confirm="yes").status_code == 303
    with session_scope(engine, readonly=True) as s:
        t = s.scalar(select(Task).where(Task.code == "1", Task.plan_id == 1))
        states = set(s.scalars(select(Milestone.status).where(Milestone.task_id == t.id)))
        assert t.archived_at is not None and states == {MilestoneState.ARCHIVED}
    assert [(a, d) for a, _, d in events(engine, EventKind.OFFICE_ARCHIVED)] == [("督办员", {"reason": "并入任务 2"})]
    assert "当前状态：<strong>已归档</strong>（已归档）" in web.get(PAGE).text


def test_a_reimport_holds_back_the_offices_decisions(web, engine, tmp_path):  # noqa: F811
    with session_scope(engine, readonly=True) as s:
        step = s.scalar(select(Milestone.id).join(Task).where(Task.code == "1", Task.plan_id == 1, Milestone.seq == 1))
    as_office(web, engine)
    post(web, "move", milestone=str(step), due="2026-12-05", reason="教材延期到货")
    post(web, "reassign", person=str(person_id(engine, "教务处副处长")), confirm="yes")

    def owner_and_date() -> tuple[str, dt.date]:
        with session_scope(engine, readonly=True) as s:
            t = s.scalar(select(Task).where(Task.code == "1", Task.plan_id == 1))
            return s.get(Person, t.owner_id).name, s.get(Milestone, step).due_date

    unchanged = import_plan(engine, write_yaml(tmp_path / "same.yaml", plan_definition()))
    assert unchanged.conflicts == [] and owner_and_date() == ("教务处副处长", dt.date(2026, 12, 5))
    sheet = plan_definition()
    t = task_of(sheet, "1")
    t["owner"] = "宣传部部长"
    t["roadmap"] = "2026年11月25日 制定方案；2026年12月15日 中期检查"
    changed = import_plan(engine, write_yaml(tmp_path / "changed.yaml", sheet))
    [conflict] = changed.conflicts
    assert conflict.code == "1"
    assert any(
        line.startswith("责任人：表格为 宣传部部长，领导小组办公室已在督办系统中改由 教务处副处长 负责（督办员，")
        for line in conflict.details
    )
    assert any("表格为 2026-11-25，领导小组办公室已在督办系统中将完成时间调整为 2026-12-05（督办员，" in line for line in conflict.details)
    assert owner_and_date() == ("教务处副处长", dt.date(2026, 12, 5))
    accepted = import_plan(engine, write_yaml(tmp_path / "accept.yaml", sheet), accept=["1"])
    assert [c.code for c in accepted.accepted] == ["1"] and owner_and_date() == ("宣传部部长", dt.date(2026, 11, 25))


def test_the_owners_view_link_shows_the_reminders_sent_to_them_and_no_one_elses(web, engine):  # noqa: F811
    from tests.web_helpers import make_link

    as_office(web, engine)
    assert post(web, "urge", text="请本周内报送进展").status_code == 303
    with session_scope(engine) as s:
        t = s.scalar(select(Task).where(Task.code == "1", Task.plan_id == 1))
        s.add(
            Notification(
                key="esc-test", plan_id=1, task_id=t.id, recipient_id=person_id(engine, "分管教学副校长"), kind=MessageKind.ESCALATION,
                level=2, due_date=dt.date(2026, 11, 20), days=-6, decided_on=PINNED_DAY, created_at=PINNED.astimezone(dt.UTC),
                data={"owner": "教务处处长"},
            )
        )  # fmt: skip
    web.cookies.clear()
    view = web.get(f"/l/{make_link(engine, '教务处处长', 'view', '1')}")
    assert view.status_code == 200
    assert '<span class="h-label">催办</span>' in view.text and "督办员催办：请抓紧推进该任务" in view.text
    assert "发给您 · 待发送" in view.text
    assert "分管校领导督办" not in view.text and "分管教学副校长 ·" not in view.text
    ack = web.get(f"/l/{make_link(engine, '教务处处长', 'ack', '1')}")
    assert ack.status_code == 200 and '<span class="h-label">催办</span>' in ack.text and "发给您" not in ack.text
