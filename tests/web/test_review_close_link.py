"""The coordinator's verdict link page: the select starts empty, the last verdict closes nothing,
and 完成评定并报送 (a box to tick) closes the review and sends the report."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Notification, Review
from duban.reviews import api as reviews
from duban.vocabulary import MessageKind
from tests.web.test_review_roles import app_for, roles_plan, start_review, verdict_link  # noqa: F401  (the fixture)
from tests.web_helpers import csrf_of

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)


def status(engine, rid: int) -> str:
    with session_scope(engine) as s:
        return s.get(Review, rid).status


def reports(engine) -> int:
    with session_scope(engine) as s:
        return len(s.scalars(select(Notification.id).where(Notification.kind == MessageKind.REVIEW_REPORT)).all())


def test_the_verdict_page_closes_only_on_the_explicit_step(app_for, engine, tmp_path):  # noqa: F811
    web = app_for(roles_plan(office=["督办员二"], leading_group=["党委书记"]))
    rid, items = start_review(engine)
    reviews.advance(engine, rid, today=dt.date(2026, 11, 24), reports_dir=tmp_path)  # everyone answered: waiting for verdicts
    rv = f"/rv/{verdict_link(engine, '督办员二', rid)}"
    page = web.get(rv)
    assert page.status_code == 200 and '<option value="">请选择</option>' in page.text
    assert " selected" not in page.text.split(f'id="verdict-{items["1"]}"')[1].split("</select>")[0]
    assert "还有 2 项任务尚未评定" in page.text and f'action="{rv}/close"' not in page.text
    for code in ("1", "2"):
        ok = web.post(f"{rv}/items/{items[code]}", data={"csrf": csrf_of(page.text), "verdict": "达标", "note": ""})
        assert ok.status_code == 200
    assert "请点击“完成评定并报送”" in ok.text and status(engine, rid) == "waiting_verdicts" and reports(engine) == 0
    assert "达标 2 项" in ok.text and f'action="{rv}/close"' in ok.text
    unticked = web.post(f"{rv}/close", data={"csrf": csrf_of(ok.text)})
    assert unticked.status_code == 400 and "请勾选确认后再完成评定并报送" in unticked.text and status(engine, rid) == "waiting_verdicts"
    done = web.post(f"{rv}/close", data={"csrf": csrf_of(ok.text), "confirm": "yes"})
    assert done.status_code == 200 and "督查报告已生成并报送领导小组和领导小组办公室" in done.text
    assert status(engine, rid) == "closed" and reports(engine) == 2  # the leading group and the office
    again = web.post(f"{rv}/items/{items['1']}", data={"csrf": csrf_of(ok.text), "verdict": "基本达标", "note": ""})
    assert again.status_code == 400 and "评定不能再修改" in again.text
