"""Verdicts on the dashboard's review page: the select starts empty, per task or in a batch, editable
until the review is closed, and closed only by the explicit 完成评定并报送 step (a summary first)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Notification, Person, Review, ReviewItem, Task
from duban.reviews import api as reviews
from duban.settings import get_settings
from duban.vocabulary import MessageKind
from tests.web.test_dashboard import login
from tests.web.test_dashboard_reviews import TODAY, answer, client, engine_web, field, start_review  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clock")


def verdicts(engine, rid: int) -> dict[str, tuple]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(Task.code, ReviewItem.verdict, ReviewItem.verdict_note, ReviewItem.verdict_by)
            .join(Task, Task.id == ReviewItem.task_id)
            .where(ReviewItem.review_id == rid)
        ).all()
        status = s.get(Review, rid).status
    return {"status": status, **{code: (v, note, by) for code, v, note, by in rows}}


@pytest.fixture
def waiting(engine_web):  # noqa: F811
    """A review of tasks 1 and 2, both answered: waiting for verdicts."""
    rid = start_review(engine_web, "tasks", ["1", "2"])
    for code in ("1", "2"):
        answer(engine_web, rid, code)
    reviews.advance(engine_web, rid, today=TODAY, reports_dir=get_settings().data_dir / "reports")
    return rid


def test_verdicts_then_the_explicit_close(client, engine_web, waiting):  # noqa: F811
    rid = waiting
    login(client, "dby")
    page = client.get(f"/dashboard/reviews/{rid}")
    assert page.status_code == 200 and '<select id="verdict-1" name="verdict-1">\n        <option value="">请选择</option>' in page.text
    assert " selected" not in page.text.split('id="verdict-1"')[1].split("</select>")[0]  # no default 达标
    token = field(page.text, f"/dashboard/reviews/{rid}/verdicts")
    saved = client.post(f"/dashboard/reviews/{rid}/verdicts", data={"csrf": token, "mode": "each", "verdict-1": "达标", "verdict-2": ""})
    assert saved.status_code == 303
    assert "评定已保存（1 项）" in client.get(saved.headers["location"]).text
    assert verdicts(engine_web, rid) == {"status": "waiting_verdicts", "1": ("达标", "", "督办员"), "2": (None, "", None)}
    # the close step with a task unjudged: the summary says what blocks it, nothing closes
    close_token = field(page.text, f"/dashboard/reviews/{rid}/close")
    blocked = client.post(f"/dashboard/reviews/{rid}/close", data={"csrf": close_token, "step": "confirm"})
    assert blocked.status_code == 409 and "达标：1 项" in blocked.text and "还有 1 项任务尚未评定（2 建设课程资源库）" in blocked.text
    refused = client.post(f"/dashboard/reviews/{rid}/close", data={"csrf": close_token, "step": "do"})
    assert refused.status_code == 409 and verdicts(engine_web, rid)["status"] == "waiting_verdicts"
    # a batch verdict for both (task 1's verdict edited)
    batch = {"csrf": token, "mode": "batch", "pick": ["1", "2"], "batch_verdict": "基本达标", "batch_note": "材料不够完整"}
    assert client.post(f"/dashboard/reviews/{rid}/verdicts", data=batch).status_code == 303
    assert verdicts(engine_web, rid) == {
        "status": "waiting_verdicts",
        "1": ("基本达标", "材料不够完整", "督办员"),
        "2": ("基本达标", "材料不够完整", "督办员"),
    }
    confirm = client.post(f"/dashboard/reviews/{rid}/close", data={"csrf": close_token, "step": "confirm"})
    assert confirm.status_code == 200 and "基本达标：2 项" in confirm.text and "尚未评定：0 项" in confirm.text
    assert verdicts(engine_web, rid)["status"] == "waiting_verdicts"  # the summary changes nothing
    done = client.post(
        f"/dashboard/reviews/{rid}/close", data={"csrf": field(confirm.text, f"/dashboard/reviews/{rid}/close"), "step": "do"}
    )
    assert done.status_code == 303 and "已完成评定，督查报告已生成并报送" in client.get(done.headers["location"]).text
    assert verdicts(engine_web, rid)["status"] == "closed"
    with session_scope(engine_web) as s:
        told = sorted(
            s.scalars(
                select(Person.name)
                .join(Notification, Notification.recipient_id == Person.id)
                .where(Notification.kind == MessageKind.REVIEW_REPORT)
            )
        )
    assert told == ["党委书记", "督办员"]
    after = client.post(f"/dashboard/reviews/{rid}/verdicts", data={"csrf": token, "mode": "each", "verdict-1": "达标"})
    assert after.status_code == 400 and "已完成并已生成报告，评定不能再修改" in after.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"mode": "each", "verdict-1": "达标", "verdict-2": "需整改", "note-2": "不足"}, "任务 2：请填写整改事项"),
        ({"mode": "each"}, "请至少为一项任务选择评定结果。"),
        ({"mode": "batch", "batch_verdict": "达标"}, "批量评定：请先勾选要评定的任务。"),
        ({"mode": "batch", "pick": ["1"]}, "批量评定：请选择评定结果。"),
    ],
)
def test_a_refused_form_saves_nothing(client, engine_web, waiting, form, message):  # noqa: F811
    login(client, "dby")
    token = field(client.get(f"/dashboard/reviews/{waiting}").text, f"/dashboard/reviews/{waiting}/verdicts")
    page = client.post(f"/dashboard/reviews/{waiting}/verdicts", data={"csrf": token, **form})
    assert page.status_code == 400 and message in page.text
    assert verdicts(engine_web, waiting) == {"status": "waiting_verdicts", "1": (None, "", None), "2": (None, "", None)}


def test_leaders_do_not_judge(client, engine_web, waiting):  # noqa: F811
    login(client, "leader")
    page = client.get(f"/dashboard/reviews/{waiting}")
    assert 'name="verdict-1"' not in page.text and "完成评定并报送" not in page.text
    assert client.post(f"/dashboard/reviews/{waiting}/verdicts", data={"mode": "each", "verdict-1": "达标"}).status_code == 403
    assert client.post(f"/dashboard/reviews/{waiting}/close", data={"step": "do"}).status_code == 403
