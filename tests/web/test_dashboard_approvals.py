"""The dashboard's 批量审核: an office account decides several requests at once (a confirmation
step first), an extension approved to another date, items decided meanwhile reported, and a
signed-in reviewer's own decisions never refused for their pace."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Milestone, Notification, Person, Request, Task, utcnow
from duban.vocabulary import MessageKind, MilestoneState, RequestKind, RequestStatus
from tests.web.test_dashboard import add_account, login, web  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clock")
TOKEN_RE = re.compile(r'name="csrf" value="([0-9a-f]+)">\s*<input type="hidden" name="plan"')


def ask(engine, code: str, kind: str, *, to: dt.date | None = None, seq: int = 1) -> int:
    """A pending request of task ``code``'s step ``seq``, as its owner's link leaves it."""
    with session_scope(engine) as s:
        task = s.scalar(select(Task).where(Task.plan_id == 1, Task.code == code))
        m = s.scalar(select(Milestone).where(Milestone.task_id == task.id).order_by(Milestone.seq).offset(seq - 1).limit(1))
        if kind == RequestKind.COMPLETION:
            m.status, m.submitted_at = MilestoneState.SUBMITTED, utcnow()
        req = Request(
            plan_id=1,
            task_id=task.id,
            milestone_id=m.id,
            person_id=task.owner_id,
            kind=kind,
            status=RequestStatus.PENDING,
            note="已完成，见附件。" if kind == RequestKind.COMPLETION else "需协调场地",
            new_due_date=to,
            created_at=utcnow(),
            decision_note="",
        )
        s.add(req)
        s.flush()
        return req.id


def due_of(engine, code: str, seq: int = 1) -> dt.date:
    with session_scope(engine) as s:
        task = s.scalar(select(Task).where(Task.plan_id == 1, Task.code == code))
        return s.scalar(select(Milestone.due_date).where(Milestone.task_id == task.id).order_by(Milestone.seq).offset(seq - 1).limit(1))


def status_of(engine, rid: int) -> str:
    with session_scope(engine) as s:
        return s.get(Request, rid).status


def told(engine, kind: str) -> list[dict]:
    with session_scope(engine) as s:
        return [n.data for n in s.scalars(select(Notification).where(Notification.kind == kind).order_by(Notification.id))]


@pytest.fixture
def office(web, engine):  # noqa: F811
    add_account(engine, "dby", "office", "demo", person="督办员")
    login(web, "dby")
    return web


def test_a_batch_is_confirmed_then_decided_in_one_go(office, engine):
    due = due_of(engine, "1")
    done_1 = ask(engine, "1", RequestKind.COMPLETION, seq=2)
    ext = ask(engine, "1", RequestKind.EXTENSION, to=due + dt.timedelta(days=30))
    done_2 = ask(engine, "2", RequestKind.COMPLETION)
    page = office.get("/dashboard/approvals")
    assert page.status_code == 200 and "<h2>待审核申请（3）</h2>" in page.text
    assert "任务 1 集体备课" in page.text and "责任人 教务处处长" in page.text and f'name="due-{ext}"' in page.text
    token = TOKEN_RE.search(page.text).group(1)
    new_due = due + dt.timedelta(days=20)  # approved to another date than asked
    form = {"csrf": token, "plan": "", "kind": "", "decision": "approve", "note": "", "pick": [done_1, ext, done_2]}
    form[f"due-{ext}"] = new_due.isoformat()
    confirm = office.post("/dashboard/approvals", data={**form, "step": "confirm"})
    assert confirm.status_code == 200 and "请确认：批准 3 项申请" in confirm.text
    assert f"批准延期，完成时间调整为 {new_due.isoformat()}（原定 {due.isoformat()}）" in confirm.text
    assert status_of(engine, ext) == "pending"  # the confirmation changes nothing
    # meanwhile a colleague's link returns one of them
    with session_scope(engine) as s:
        req = s.get(Request, done_2)
        req.status, req.decided_by_id, req.decided_at = (
            RequestStatus.RETURNED,
            s.scalar(select(Person.id).where(Person.name == "党委书记")),
            utcnow(),
        )
    token = TOKEN_RE.search(confirm.text).group(1)
    done = office.post("/dashboard/approvals", data={**form, "csrf": token, "step": "do"})
    assert done.status_code == 200 and "已批准 2 项，已退回 0 项，未处理 1 项" in done.text
    assert "由党委书记处理（已退回），无需重复审核" in done.text
    assert [status_of(engine, r) for r in (done_1, ext, done_2)] == ["approved", "approved", "returned"]
    assert due_of(engine, "1") == new_due
    [decided] = told(engine, MessageKind.EXTENSION_DECIDED)
    assert (decided["asked"], decided["new_due"], decided["reviewer"]) == (
        (due + dt.timedelta(days=30)).isoformat(),
        new_due.isoformat(),
        "督办员",
    )
    assert len(told(engine, MessageKind.APPROVED)) == 1


@pytest.mark.parametrize(
    ("decision", "note", "due_shift", "message"),
    [
        ("return", "", None, "退回原因：退回（或不予批准延期）时请填写原因"),
        ("approve", "", 0, "批准延至的日期应晚于目前的完成时间"),
        ("maybe", "", None, "请选择批准或退回。"),
    ],
)
def test_a_refused_batch_changes_nothing(office, engine, decision, note, due_shift, message):
    due = due_of(engine, "1")
    ext = ask(engine, "1", RequestKind.EXTENSION, to=due + dt.timedelta(days=30))
    token = TOKEN_RE.search(office.get("/dashboard/approvals").text).group(1)
    form = {"csrf": token, "decision": decision, "note": note, "pick": [ext], "step": "do"}
    if due_shift is not None:
        form[f"due-{ext}"] = (due + dt.timedelta(days=due_shift)).isoformat()
    page = office.post("/dashboard/approvals", data=form)
    assert message in page.text
    assert status_of(engine, ext) == "pending" and due_of(engine, "1") == due and told(engine, MessageKind.EXTENSION_DECIDED) == []


def test_nineteen_decisions_in_a_row_all_succeed(office, engine):
    """A signed-in reviewer is not limited per minute (the outside walk-through saw 6 of 19 refused on the queue link)."""
    due = due_of(engine, "1")
    asked = [ask(engine, "1", RequestKind.EXTENSION, to=due + dt.timedelta(days=n)) for n in range(1, 20)]
    token = TOKEN_RE.search(office.get("/dashboard/approvals").text).group(1)
    for rid in asked:
        page = office.post("/dashboard/approvals", data={"csrf": token, "decision": "approve", "note": "", "pick": [rid], "step": "do"})
        assert page.status_code == 200 and "已批准 1 项，已退回 0 项" in page.text
    assert {status_of(engine, r) for r in asked} == {"approved"}
    assert due_of(engine, "1") == due + dt.timedelta(days=19)


@pytest.mark.parametrize("role", ["leader", "viewer"])
def test_only_office_accounts_decide(web, engine, role):  # noqa: F811
    add_account(engine, "someone", role, "demo")
    login(web, "someone")
    assert web.get("/dashboard/approvals").status_code == 403
    assert web.post("/dashboard/approvals", data={"decision": "approve", "pick": ["1"]}).status_code == 403


def test_nobody_decides_their_own_task(web, engine):  # noqa: F811
    add_account(engine, "jwc", "office", "demo", person="教务处处长")
    login(web, "jwc")
    ext = ask(engine, "1", RequestKind.EXTENSION, to=due_of(engine, "1") + dt.timedelta(days=9))
    page = web.get("/dashboard/approvals")
    assert "（本人提交或负责的任务，请由其他审核人员审核）" in page.text and f'name="pick" value="{ext}"' not in page.text
    token = TOKEN_RE.search(page.text).group(1)
    done = web.post("/dashboard/approvals", data={"csrf": token, "decision": "approve", "note": "", "pick": [ext], "step": "do"})
    assert "未处理 1 项" in done.text and "不能审核自己" in done.text and status_of(engine, ext) == "pending"
