"""Evidence through the web forms (反馈, 提交办结, 督查 answers), on SQLite and PostgreSQL: a refused
submission leaves no file on disk, a saved one keeps its files, and the caps per link and per plan
a day refuse with a message and store nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkSpec, issue
from duban.models import Evidence, Plan, ReviewItem
from duban.reviews import api as reviews
from duban.settings import get_settings
from tests.conftest import PINNED, PINNED_DAY
from tests.test_evidence_files import ole
from tests.web_helpers import PDF, SECRET, csrf_of, import_small, make_link, milestone_id, snapshot

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)
KB = 1024
LINK_CAP = "此链接已上传附件 0.6 MB，加上本次的 0.6 MB 将超过每个链接 1 MB 的上限，本次提交未保存。请精简或压缩材料后重新提交，或联系领导小组办公室。"
DAY_CAP = "今日本计划收到的附件已接近 1 MB 的每日上限，本次提交未保存。请明天再提交，或联系领导小组办公室。"


def pdf_of(kb: int, mark: bytes = b"") -> bytes:
    """A PDF of ``kb`` KB (``mark`` makes its bytes, so its hash, its own)."""
    body = PDF + mark
    return body + b"%" * (kb * KB - len(body))


@pytest.fixture
def setup(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the data folder of a PostgreSQL store is ./.duban: this test's own
    import_small(engine, tmp_path)
    return engine, monkeypatch


def client(monkeypatch, **env) -> TestClient:
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    for k, v in env.items():
        monkeypatch.setenv(f"DUBAN_{k.upper()}", str(v))
    get_settings.cache_clear()
    from duban.web.app import create_app

    return TestClient(create_app())


def files_on_disk() -> list[Path]:
    return sorted(p for p in get_settings().evidence_path.rglob("*") if p.is_file())


def stored_evidence(engine) -> list[tuple[str, int]]:
    with session_scope(engine) as s:
        return [(e.filename, e.size) for e in s.scalars(select(Evidence).order_by(Evidence.id))]


def post(web, path: str, fields: dict, files: list[tuple[str, bytes]]):
    page = web.get(path)
    assert page.status_code == 200
    return web.post(
        path, data={"csrf": csrf_of(page.text), **fields}, files=[("files", (n, c, "application/octet-stream")) for n, c in files]
    )


def answer_link(engine, code: str = "1") -> str:
    """A 督查 over one task, and its owner's answer link."""
    with session_scope(engine) as s:
        review = reviews.create(
            s,
            plan_code=None,
            scope_kind="tasks",
            scope_values=[code],
            reply_by=PINNED_DAY + dt.timedelta(days=10),
            ask="请报告推进情况。",
            today=PINNED_DAY,
            started_by="督办员",
        )
        s.flush()
        item = s.scalar(select(ReviewItem).where(ReviewItem.review_id == review.id))
        expires = PINNED_DAY + dt.timedelta(days=30)
        spec = LinkSpec(s.scalar(select(Plan.id)), item.owner_id, "review_answer", None, None, expires, review_item_id=item.id)
        [lid] = issue(s, [spec], secret=SECRET, today=PINNED_DAY)
    return link_token(SECRET, lid, "review_answer", expires)


ANSWER = {"done": "已完成集体备课 4 次。", "problems": "", "next_steps": "形成教案集。"}


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("progress", {"text": ""}, "请填写工作进展。"),
        ("done", {"note": "   "}, "请填写办结说明（完成情况及佐证材料说明）。"),
        ("review_answer", {**ANSWER, "done": ""}, "请填写已完成工作。"),
    ],
)
def test_a_refused_submission_leaves_no_file(setup, action, fields, message):
    engine, monkeypatch = setup
    if action == "review_answer":
        path = f"/rv/{answer_link(engine)}"
    else:
        path = f"/l/{make_link(engine, '教务处处长', action, '1', milestone=milestone_id(engine, '1', 1))}"
    with client(monkeypatch) as web:
        before = snapshot(engine)
        for i in range(3):  # as the outside test did: three posts, a 2 MB PDF each
            resp = post(web, path, fields, [(f"证明{i}.pdf", pdf_of(2048, str(i).encode()))])
            assert resp.status_code == 400 and message in resp.text
    assert snapshot(engine) == before  # nothing recorded, the link still unused
    assert files_on_disk() == []


@pytest.mark.parametrize("action", ["progress", "done", "review_answer"])
def test_a_saved_submission_keeps_its_files_by_hash(setup, action):
    engine, monkeypatch = setup
    if action == "review_answer":
        path, fields = f"/rv/{answer_link(engine)}", ANSWER
    else:
        path = f"/l/{make_link(engine, '教务处处长', action, '1', milestone=milestone_id(engine, '1', 1))}"
        fields = {"text": "已制定方案。", "note": "已制定方案。"}
    with client(monkeypatch) as web:
        resp = post(web, path, fields, [("方案.pdf", pdf_of(600))])
    assert resp.status_code == 200
    assert stored_evidence(engine) == [("方案.pdf", 600 * KB)]
    with session_scope(engine) as s:
        stored = s.scalar(select(Evidence.stored_name))
    assert files_on_disk() == [get_settings().evidence_path / stored]


def test_a_refused_file_in_a_form_stores_nothing(setup):
    engine, monkeypatch = setup
    tok = make_link(engine, "教务处处长", "progress", "1")
    with client(monkeypatch) as web:
        before = snapshot(engine)
        resp = post(
            web, f"/l/{tok}", {"text": "进展"}, [("方案.pdf", PDF), ("统计.xls", ole("Workbook", storages=("_VBA_PROJECT_CUR", "VBA")))]
        )
    assert resp.status_code == 400
    assert "「统计.xls」：文件中含有宏（VBA 代码），出于安全考虑不予接收。请另存为不含宏的格式后重新上传。" in resp.text
    assert snapshot(engine) == before
    assert files_on_disk() == []  # the PDF checked before it is not left behind either


def test_a_reusable_answer_link_stops_at_its_cap(setup):
    engine, monkeypatch = setup
    path = f"/rv/{answer_link(engine)}"
    with client(monkeypatch, upload_link_max_mb=1) as web:
        assert post(web, path, ANSWER, [("一.pdf", pdf_of(600, b"1"))]).status_code == 200
        kept = files_on_disk()
        resp = post(web, path, {**ANSWER, "done": "补充材料。"}, [("二.pdf", pdf_of(600, b"2"))])
        assert resp.status_code == 413 and LINK_CAP in resp.text
        assert post(web, path, {**ANSWER, "done": "补充说明。"}, []).status_code == 200  # text alone is still welcome
    assert stored_evidence(engine) == [("一.pdf", 600 * KB)]
    assert files_on_disk() == kept
    with session_scope(engine) as s:
        assert s.scalar(select(ReviewItem.done)) == "补充说明。"


def test_one_submission_over_the_link_cap_is_refused(setup):
    engine, monkeypatch = setup
    tok = make_link(engine, "教务处处长", "progress", "1")
    with client(monkeypatch, upload_link_max_mb=1) as web:
        before = snapshot(engine)
        resp = post(web, f"/l/{tok}", {"text": "进展"}, [("一.pdf", pdf_of(300, b"1")), ("二.pdf", pdf_of(800, b"2"))])
    assert resp.status_code == 413
    assert "此链接已上传附件 0.0 MB，加上本次的 1.1 MB 将超过每个链接 1 MB 的上限" in resp.text
    assert snapshot(engine) == before
    assert files_on_disk() == []


def test_the_plan_day_cap_refuses_until_the_next_day(setup, clock):
    engine, monkeypatch = setup
    first = make_link(engine, "教务处处长", "progress", "1")
    second = make_link(engine, "教务处副处长", "progress", "2")
    with client(monkeypatch, upload_plan_day_max_mb=1) as web:
        assert post(web, f"/l/{first}", {"text": "进展"}, [("一.pdf", pdf_of(600, b"1"))]).status_code == 200
        before, kept = snapshot(engine), files_on_disk()
        resp = post(web, f"/l/{second}", {"text": "进展"}, [("二.pdf", pdf_of(600, b"2"))])
        assert resp.status_code == 413 and DAY_CAP in resp.text
        assert 'name="text"' in resp.text and ">进展</textarea>" in resp.text  # the form again, input kept
        assert snapshot(engine) == before and files_on_disk() == kept
        clock.move_to(PINNED + dt.timedelta(days=1))  # the next local day starts the count afresh
        assert post(web, f"/l/{second}", {"text": "进展"}, [("二.pdf", pdf_of(600, b"2"))]).status_code == 200
    assert stored_evidence(engine) == [("一.pdf", 600 * KB), ("二.pdf", 600 * KB)]
    assert len(files_on_disk()) == 2
