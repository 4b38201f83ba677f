"""The link pages through HTTP (FastAPI TestClient) on SQLite and PostgreSQL: what a page shows,
each action from its link, the coordinator's review and queue, fresh links, evidence downloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Evidence
from duban.settings import get_settings
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from notifications.channel import Outgoing
from tests.conftest import PINNED_DAY
from tests.web_helpers import (
    CRITERIA,
    PDF,
    PNG,
    SECRET,
    STATEMENT,
    csrf_of,
    events,
    import_small,
    ledger,
    make_link,
    milestone,
    milestone_id,
    requests,
    small_plan_app,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)


class Recorder:
    def __init__(self):
        self.sent: list[Outgoing] = []

    def __call__(self, out):
        self.sent.append(out)


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    with small_plan_app(engine, tmp_path, monkeypatch) as client:
        yield client


def deliver_now(engine) -> list[Outgoing]:
    """Assemble and deliver what waits in the ledger (what the web app's dispatcher or the next
    sweep does), recording the messages."""
    today = PINNED_DAY
    links = LinkMaker("http://testserver", SECRET, today)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # past the office's next batch time: its held approval requests too
    assemble(engine, today=today, links=links, now=later)
    rec = Recorder()
    deliver(engine, rec, now=later, links=links)
    return rec.sent


def urls_in(text: str) -> dict[str, str]:
    """label -> path of the links in a plain-text message."""
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"^\s*(\S+)：http://testserver(/l/\S+)$", text, re.M)}


def test_page_shows_task_statement_criteria_milestones_and_history(web, engine):
    tok = make_link(engine, "教务处处长", "done", "1", milestone=milestone_id(engine, "1", 1))
    before = snapshot(engine)
    resp = web.get(f"/l/{tok}")
    assert resp.status_code == 200
    html = resp.text
    assert "<title>提交办结：集体备课 · 督办系统</title>" in html
    assert "教务处处长，您好。请核对任务情况后办理「提交办结」。" in html
    assert STATEMENT in html and CRITERIA in html
    assert '<span class="m-title">制定方案</span>' in html and "完成时间 2026-11-20（已逾期）" in html
    assert "完成时间 2026-12-15" in html and "完成时间 2026-12-31" in html
    assert '<span class="h-label">下达任务</span>' in html
    assert 'name="note"' in html and 'type="file"' in html and 'enctype="multipart/form-data"' in html
    assert resp.cookies.get("duban_csrf")
    assert snapshot(engine) == before  # opening a link changes nothing


def test_owner_submits_done_with_evidence_and_coordinator_approves_from_the_message(web, engine, tmp_path):
    mid = milestone_id(engine, "1", 1)
    tok = make_link(engine, "教务处处长", "done", "1", milestone=mid)
    page = web.get(f"/l/{tok}")
    resp = web.post(
        f"/l/{tok}",
        data={"csrf": csrf_of(page.text), "note": "实施方案已印发，见附件。", "urls": "https://jwc.example.edu.cn/notice/1\n"},
        files=[("files", ("实施方案.pdf", PDF, "application/pdf")), ("files", ("照片.png", PNG, "image/png"))],
    )
    assert resp.status_code == 200
    assert "办理成功。" in resp.text and "已提交办结，等待领导小组办公室审核。" in resp.text
    assert '<span class="state s-submitted">待审核</span>' in resp.text
    [req] = requests(engine)
    assert (req.kind, req.status, req.note) == ("completion", "pending", "实施方案已印发，见附件。")
    assert milestone(engine, mid).status == "submitted"
    with session_scope(engine) as s:
        files = s.scalars(select(Evidence).order_by(Evidence.id)).all()
    assert [(e.kind, e.filename or e.url, e.size, e.request_id) for e in files] == [
        ("url", "https://jwc.example.edu.cn/notice/1", None, req.id),
        ("file", "实施方案.pdf", len(PDF), req.id),
        ("file", "照片.png", len(PNG), req.id),
    ]
    sha = hashlib.sha256(PDF).hexdigest()
    stored = get_settings().evidence_path / sha[:2] / sha
    assert files[1].stored_name == f"{sha[:2]}/{sha}" and stored.read_bytes() == PDF
    [ev] = events(engine, "completion_submitted")
    assert ev.data["ip"] == "testclient" and ev.data["agent"] == "testclient" and ev.data["link"] > 0

    # the coordinator's digest carries a review link and the queue link
    [msg] = [m for m in deliver_now(engine) if m.recipient == "督办员"]
    assert "【待您审核，请及时处理】1 项" in msg.body
    assert "责任人 教务处处长（教务处） 已提交办结，办结说明：实施方案已印发，见附件。请审核佐证材料后办结或退回" in msg.body
    links = urls_in(msg.body)
    assert sorted(links) == ["审核", "待审核事项"]
    review = web.get(links["审核"])
    assert review.status_code == 200
    assert "请审核以下办结申请。" in review.text and "实施方案.pdf" in review.text
    # the reviewer downloads the evidence through their link
    hrefs = set(re.findall(r'href="(/l/[^"]+/files/\d+)" download>实施方案.pdf', review.text))
    assert len(hrefs) == 1
    href = hrefs.pop()
    got = web.get(href)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert (
        got.headers["content-disposition"] == "attachment; filename=\"____.pdf\"; filename*=UTF-8''%E5%AE%9E%E6%96%BD%E6%96%B9%E6%A1%88.pdf"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    done = web.post(links["审核"], data={"csrf": csrf_of(review.text), "decision": "approve", "note": ""})
    assert done.status_code == 200 and "已审核通过，里程碑「制定方案」办结。" in done.text
    assert milestone(engine, mid).status == "done"
    assert [r.status for r in requests(engine)] == ["approved"]
    [owner_msg] = [m for m in deliver_now(engine) if m.recipient == "教务处处长"]
    assert "您提交的办结已由督办员审核通过，该事项已办结。感谢您的辛勤工作" in owner_msg.body
    # the owner's done link now says the step is closed
    again = web.get(f"/l/{tok}")
    assert again.status_code == 410 and "里程碑「制定方案」已办结，无需再办理。" in again.text


def test_queue_lists_requests_and_decides_them(web, engine):
    m1, m2 = milestone_id(engine, "1", 1), milestone_id(engine, "1", 2)
    for action, mid, data in (("done", m1, {"note": "已完成"}), ("extend", m2, {"new_due": "2027-01-15", "reason": "寒假顺延"})):
        tok = make_link(engine, "教务处处长", action, "1", milestone=mid)
        page = web.get(f"/l/{tok}")
        assert web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), **data}).status_code == 200
    done_req, ext_req = requests(engine)
    queue = make_link(engine, "督办员", "queue", None)
    page = web.get(f"/l/{queue}")
    assert page.status_code == 200 and "待审核事项（2 项）" in page.text
    assert f'href="/l/{queue}/r/{done_req.id}"' in page.text and "申请延至 2027-01-15（原 2026-12-15）" in page.text
    # return the completion with a reason
    one = web.get(f"/l/{queue}/r/{done_req.id}")
    bad = web.post(f"/l/{queue}/r/{done_req.id}", data={"csrf": csrf_of(one.text), "decision": "return", "note": ""})
    assert bad.status_code == 400 and "请填写退回原因。" in bad.text
    ok = web.post(f"/l/{queue}/r/{done_req.id}", data={"csrf": csrf_of(one.text), "decision": "return", "note": "缺少印发文件"})
    assert ok.status_code == 200 and "已退回" in ok.text
    assert milestone(engine, m1).status == "in_progress"
    # refuse the extension
    two = web.get(f"/l/{queue}/r/{ext_req.id}")
    ok = web.post(f"/l/{queue}/r/{ext_req.id}", data={"csrf": csrf_of(two.text), "decision": "refuse", "note": "请按期完成"})
    assert ok.status_code == 200 and "已不予批准" in ok.text
    assert [r.status for r in requests(engine)] == ["returned", "refused"]
    assert "目前没有等待审核的事项。" in web.get(f"/l/{queue}").text
    [owner_msg] = [m for m in deliver_now(engine) if m.recipient == "教务处处长"]
    assert "【审核结果】1 项\n1. [1] 集体备课\n" in owner_msg.body  # both decisions, one entry for the task
    assert "退回原因：缺少印发文件" in owner_msg.body and "您申请延期至 2027-01-15 未获批准，理由：请按期完成" in owner_msg.body
    # the returned item carries fresh links to submit again
    # (the two decisions are about two steps: each step's links name it)
    assert {"反馈进展", "提交办结（制定方案）", "申请延期（制定方案）"} <= set(urls_in(owner_msg.body))


def test_ack_and_progress(web, engine):
    ack = make_link(engine, "教务处处长", "ack", "1")
    page = web.get(f"/l/{ack}")
    assert "确认签收" in page.text
    resp = web.post(f"/l/{ack}", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 200 and "已签收。" in resp.text
    prog = make_link(engine, "教务处处长", "progress", "1")
    page = web.get(f"/l/{prog}")
    empty = web.post(f"/l/{prog}", data={"csrf": csrf_of(page.text), "text": " "})
    assert empty.status_code == 400 and "请填写工作进展。" in empty.text
    resp = web.post(f"/l/{prog}", data={"csrf": csrf_of(page.text), "text": "完成第一次集体备课"})
    assert resp.status_code == 200 and "进展已反馈" in resp.text
    assert '<span class="h-label">反馈进展</span>' in resp.text and "完成第一次集体备课" in resp.text
    assert [e.kind for e in events(engine)][-2:] == ["acknowledged", "progress_reported"]
    # a second ack link of the same task: the page says it is done already, no form
    page = web.get(f"/l/{make_link(engine, '教务处处长', 'ack', '1')}")
    assert "无需重复签收" in page.text and "确认签收" not in page.text


def test_view_link_is_read_only(web, engine):
    tok = make_link(engine, "教务处处长", "view", "2")
    page = web.get(f"/l/{tok}")
    assert page.status_code == 200 and "以下是该任务的办理情况。" in page.text and "<form" not in page.text
    cookie = page.cookies.get("duban_csrf")
    from duban.web.security import csrf_token

    with session_scope(engine) as s:
        from duban.models import Link

        lid = s.scalar(select(Link.id).where(Link.action == "view"))
    before = snapshot(engine)
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_token(SECRET, cookie, lid)})
    assert resp.status_code == 405 and "此链接仅供查看" in resp.text
    assert snapshot(engine) == before


def test_expired_link_offers_a_fresh_one_by_message(web, engine, monkeypatch):
    tok = make_link(engine, "教务处处长", "progress", "1", expires=PINNED_DAY - dt.timedelta(days=1))
    page = web.get(f"/l/{tok}")
    assert page.status_code == 410
    assert "<h1>链接已过期</h1>" in page.text and "给我发送新链接" in page.text
    resp = web.post(f"/l/{tok}/renew", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 200
    assert "新的「反馈进展」链接将通过消息发送给教务处处长" in resp.text
    [item] = ledger(engine, "relink")
    assert item.data["action"] == "progress"
    [msg] = deliver_now(engine)
    assert msg.recipient == "教务处处长" and "【您申请的新链接】1 项" in msg.body
    fresh = urls_in(msg.body)["反馈进展"]
    assert web.get(fresh).status_code == 200
    # asking again the same day sends nothing new
    again = web.post(f"/l/{tok}/renew", data={"csrf": csrf_of(page.text)})
    assert "今天已经为您发送过新链接" in again.text and len(ledger(engine, "relink")) == 1


def test_dispatcher_sends_at_once(use_database, engine, tmp_path, monkeypatch):
    """With sending on, an action's messages go out right after it (outbox channel)."""
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_DELAY", "0.2")
    monkeypatch.setenv("DUBAN_SEND_HOURS", "always")
    get_settings.cache_clear()
    import_small(engine, tmp_path)
    from duban.web.app import create_app

    app = create_app()
    with TestClient(app) as client:
        tok = make_link(engine, "教务处处长", "done", "1", milestone=milestone_id(engine, "1", 1))
        page = client.get(f"/l/{tok}")
        assert client.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}).status_code == 200
        assert app.state.dispatcher.flush(30)
        # the office's approval request waits for the plan's next batch time: nothing yet
        assert sorted(get_settings().outbox_path.rglob("*.txt")) == []
    from duban.runtime import runtime
    from duban.sweep.sending import deliver_due

    deliver_due(runtime(), now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))  # a delivery run after the batch time
    files = sorted(get_settings().outbox_path.rglob("*.txt"))
    assert [f.name.split("-", 1)[1] for f in files] == ["督办员.txt"]
    text = files[0].read_text(encoding="utf-8")
    assert "责任人 教务处处长（教务处） 已提交办结" in text and "审核：http" in text


def test_serve_command_has_chinese_help():
    from typer.testing import CliRunner

    from duban.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "网页服务" in result.output and "--port" in result.output
