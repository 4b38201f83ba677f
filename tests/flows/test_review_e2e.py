"""A review (督查) from request to verdict, end to end, on SQLite and PostgreSQL.

The example plan; a review of one system (课程育人: 12 tasks, 7 owners) started through the flow;
three owners answer through the web page (real HTTP against the live server, with CSRF and an
upload); days pass (the daily sweep with explicit dates): reminders, the reply-by date, overdue
nags and escalations of the non-responders; the office gives verdicts on the review page (HTTP)
and with the CLI; the report (HTML + XLSX), the follow-up milestones and the ledger are checked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duban.db import session_scope
from duban.link_tokens import link_url
from duban.models import Link, Milestone, Notification, Person, Review, ReviewItem, Task
from duban.settings import get_settings
from tests.conftest import EXAMPLE_YAML
from tests.factories import import_announced
from tests.web_helpers import PDF, SECRET, TZ, csrf_of

pytestmark = pytest.mark.slow
PLAN = "sanquan-yuren-2026"
START = dt.date(2026, 11, 23)  # Monday
REPLY_BY = dt.date(2026, 12, 4)  # Friday, 9 working days later


class Clock:
    day = START


@pytest.fixture
def clock(monkeypatch):
    """The web app's 'today' (the flows and the sweep get their dates explicitly)."""
    from duban import runtime

    c = Clock()
    monkeypatch.setattr(runtime.Runtime, "today", lambda self: c.day)
    return c


@pytest.fixture
def setup(monkeypatch, use_database, engine, tmp_path, clock):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    import_announced(engine, EXAMPLE_YAML, now=dt.datetime(2026, 11, 20, 17, 0, tzinfo=TZ))
    return engine


def answer_url(engine, base_url: str, code: str) -> str:
    with session_scope(engine) as s:
        link = s.scalar(
            select(Link)
            .join(ReviewItem, ReviewItem.id == Link.review_item_id)
            .join(Task, Task.id == ReviewItem.task_id)
            .where(Task.code == code, Link.action == "review_answer")
        )
        return link_url(base_url, SECRET, link.id, link.action, link.expires_on)


def ledger(engine, kind: str, **where) -> list[tuple[str, str, int]]:
    """(recipient, task code, level) of the ledger items of a kind, sorted."""
    with session_scope(engine) as s:
        q = (
            select(Person.name, Notification.data, Notification.level, Notification.decided_on)
            .join(Person, Person.id == Notification.recipient_id)
            .where(Notification.kind == kind)
        )
        if "on" in where:
            q = q.where(Notification.decided_on == where["on"])
        return sorted((name, (data or {}).get("code", ""), level) for name, data, level, _ in s.execute(q))


def outbox_text(day: dt.date, name: str) -> str:
    folder = get_settings().outbox_path / day.isoformat()
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob(f"*-{name}.txt")))


ANSWERED = {"01.1.1": "马克思主义学院副院长", "01.1.3": "马克思主义学院院长", "01.2.2": "教务处处长"}


def test_review_of_one_system_from_request_to_report(setup, live_server, prefect_server, clock, tmp_path):
    engine = setup
    from flows.review import ReviewRequest, review_flow
    from flows.sweep import daily_sweep

    # -- the office starts a review of 课程育人 -------------------------------------------------
    result = review_flow(
        request=ReviewRequest(
            plan=PLAN,
            scope="system",
            values=["课程育人"],
            reply_by=REPLY_BY,
            ask="请对照任务书报告本学期推进情况。",
            started_by="领导小组办公室主任",
        ),
        today=START,
    )
    assert result["status"] == "open"
    review_id = result["review"]
    with session_scope(engine) as s:
        review = s.get(Review, review_id)
        assert (review.title, review.scope_kind, review.scope_values, review.flow_run_id is not None) == (
            "课程育人专项督查",
            "system",
            ["课程育人"],
            True,
        )
    requests = ledger(engine, "review_request")
    assert Counter(name for name, _, _ in requests) == {
        "教务处处长": 4,
        "马克思主义学院院长": 2,
        "教务处教学科科长": 2,
        "马克思主义学院副院长": 1,
        "马克思主义学院思政课教研室主任": 1,
        "教务处质量管理科科长": 1,
        "教务处副处长": 1,
    }
    # each owner's digest of the day carries the request and a signed link to the answer page
    text = outbox_text(START, "马克思主义学院院长")
    assert "督查填报，请按时报送" in text and "「课程育人专项督查」请您于 2026-12-04 前填报" in text
    assert answer_url(engine, live_server, "01.1.3") in text

    # -- three owners answer through the web page (real HTTP) ----------------------------------
    clock.day = dt.date(2026, 11, 25)
    with httpx.Client(base_url=live_server, follow_redirects=True, timeout=30) as client:
        for code, owner in ANSWERED.items():
            page = client.get(answer_url(engine, live_server, code))
            assert page.status_code == 200 and f"{owner}，您好" in page.text and "填报督查情况" in page.text
            assert page.url.path.startswith("/rv/")
            files = {"files": ("推进情况.pdf", PDF, "application/pdf")} if code == "01.1.3" else None
            resp = client.post(
                str(page.url),
                data={
                    "csrf": csrf_of(page.text),
                    "done": f"{code} 已完成集体备课 4 次，形成教案集。",
                    "problems": "青年教师参与度不高",
                    "next_steps": "下学期开展示范课评比",
                    "urls": f"https://example.org/evidence/{code}",
                },
                files=files,
            )
            assert resp.status_code == 200, resp.text
            assert "已收到您的督查填报，感谢您的配合" in resp.text
        # a forged form (no CSRF field) changes nothing
        forged = client.post(str(page.url), data={"done": "x", "next_steps": "y"})
        assert forged.status_code == 403
    with session_scope(engine) as s:
        answered = dict(
            s.execute(
                select(Task.code, ReviewItem.status).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.answered_at.is_not(None))
            ).all()
        )
    assert answered == {code: "answered" for code in ANSWERED}

    # -- days pass: reminders, the reply-by date, nags and escalations of the non-responders ----
    for day in (dt.date(2026, 12, 1), dt.date(2026, 12, 7), dt.date(2026, 12, 9), dt.date(2026, 12, 15)):
        clock.day = day
        daily_sweep(today=day)
    reminders = ledger(engine, "review_reminder", on=dt.date(2026, 12, 1))
    assert {code for _, code, _ in reminders} == {"01.1.2", "01.1.4", "01.2.1", "01.2.3", "01.2.4", "01.3.1", "01.3.2", "01.3.3", "01.3.4"}
    assert ledger(engine, "review_overdue", on=dt.date(2026, 12, 7)) == sorted(
        (owner, code, 0)
        for code, owner in [
            ("01.1.2", "马克思主义学院思政课教研室主任"),
            ("01.1.4", "马克思主义学院院长"),
            ("01.2.1", "教务处教学科科长"),
            ("01.2.3", "教务处质量管理科科长"),
            ("01.2.4", "教务处处长"),
            ("01.3.1", "教务处副处长"),
            ("01.3.2", "教务处处长"),
            ("01.3.3", "教务处教学科科长"),
            ("01.3.4", "教务处处长"),
        ]
    )
    escalations = ledger(engine, "review_escalation")
    assert ("教务处处长", "01.2.1", 1) in escalations and ("马克思主义学院院长", "01.1.2", 1) in escalations
    assert ("分管教学副校长", "01.2.1", 2) in escalations and ("分管教学副校长", "01.1.2", 2) in escalations
    assert not any(code in ANSWERED for _, code, _ in escalations)
    # the reply-by date passed: the office was asked for verdicts (with a signed verdict link)
    assert ledger(engine, "review_verdicts") == [("督办员（学工线）", "", 0), ("督办员（教学线）", "", 0), ("领导小组办公室主任", "", 0)]
    assert "请逐项评定" in outbox_text(dt.date(2026, 12, 7), "领导小组办公室主任")

    # -- verdicts: two on the review page (HTTP), the rest with the CLI ---------------------------
    with session_scope(engine) as s:
        link = s.scalar(
            select(Link)
            .join(Person, Person.id == Link.person_id)
            .where(Link.action == "review_verdict", Person.name == "领导小组办公室主任")
        )
        verdict_url = link_url(live_server, SECRET, link.id, link.action, link.expires_on)
        items = dict(s.execute(select(Task.code, ReviewItem.id).join(Task, Task.id == ReviewItem.task_id)).all())
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        page = client.get(verdict_url)
        assert page.status_code == 200 and "01.1.3 已完成集体备课 4 次" in page.text and "推进情况.pdf" in page.text
        rv = str(page.url)
        r1 = client.post(f"{rv}/items/{items['01.1.1']}", data={"csrf": csrf_of(page.text), "verdict": "达标", "note": "按期推进"})
        assert r1.status_code == 200 and "任务 01.1.1 评定为「达标」" in r1.text
        missing = client.post(f"{rv}/items/{items['01.1.3']}", data={"csrf": csrf_of(page.text), "verdict": "需整改", "note": "示范课不足"})
        assert missing.status_code == 400 and "请填写整改事项" in missing.text
        r2 = client.post(
            f"{rv}/items/{items['01.1.3']}",
            data={
                "csrf": csrf_of(page.text),
                "verdict": "需整改",
                "note": "示范课不足 4 节",
                "follow_up_title": "补充组织示范课 2 节",
                "follow_up_due": "2027-01-15",
                "follow_up_owner": "",
            },
        )
        assert r2.status_code == 200 and "任务 01.1.3 评定为「需整改」" in r2.text

    from duban.cli.main import app

    runner = CliRunner()
    rest = {code: "基本达标" for code in items if code not in ("01.1.1", "01.1.3", "01.1.2")}
    for code, verdict in rest.items():
        out = runner.invoke(app, ["review", "verdict", str(review_id), "--task", code, "--verdict", verdict, "--today", "2026-12-16"])
        assert out.exit_code == 0, out.output
    with session_scope(engine) as s:
        assert s.get(Review, review_id).status == "waiting_verdicts"
    out = runner.invoke(
        app,
        [
            "review",
            "verdict",
            str(review_id),
            "--task",
            "01.1.2",
            "--verdict",
            "需整改",
            "--note",
            "逾期未报",
            "--follow-up-title",
            "补报集体备课记录",
            "--follow-up-due",
            "2027-01-08",
            "--follow-up-owner",
            "马克思主义学院院长",
            "--today",
            "2026-12-16",
            "--by",
            "督办员（教学线）",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "请点击“完成评定并报送”" in out.output
    with session_scope(engine) as s:
        assert s.get(Review, review_id).status == "waiting_verdicts"  # the last verdict closes nothing
    out = runner.invoke(app, ["review", "close", str(review_id), "--today", "2026-12-16", "--by", "督办员（教学线）"])
    assert out.exit_code == 0, out.output
    assert "督查报告已生成并报送领导小组" in out.output

    # -- the review is closed, its report written and sent ----------------------------------------
    with session_scope(engine) as s:
        review = s.get(Review, review_id)
        assert review.status == "closed"
        html_path, xlsx_path = Path(review.report_html), Path(review.report_xlsx)
        follow = s.execute(
            select(Task.code, Milestone.title, Milestone.due_date, Milestone.status, Person.name)
            .join(ReviewItem, ReviewItem.follow_up_milestone_id == Milestone.id)
            .join(Task, Task.id == Milestone.task_id)
            .join(Person, Person.id == ReviewItem.follow_up_owner_id)
            .order_by(Task.code)
        ).all()
    assert html_path.parent == get_settings().data_dir / "reports" / "reviews" / str(review_id)
    assert [tuple(r) for r in follow] == [
        ("01.1.2", "督查整改：补报集体备课记录", dt.date(2027, 1, 8), "assigned", "马克思主义学院院长"),
        ("01.1.3", "督查整改：补充组织示范课 2 节", dt.date(2027, 1, 15), "in_progress", "马克思主义学院院长"),
    ]
    wb = openpyxl.load_workbook(xlsx_path)
    assert wb.sheetnames == ["概况", "填报与评定", "未填报", "整改事项", "督办记录"]
    overview = {r[0]: r[1] for r in wb["概况"].iter_rows(values_only=True)}
    assert (
        overview["督查任务数"],
        overview["已填报"],
        overview["未填报"],
        overview["评定为“达标”"],
        overview["评定为“基本达标”"],
        overview["评定为“需整改”"],
        overview["整改事项"],
    ) == (12, 3, 9, 1, 9, 2, 2)
    rows = list(wb["填报与评定"].iter_rows(values_only=True))
    assert rows[0][:8] == ("任务编号", "任务", "育人体系", "牵头单位", "责任人", "填报时间", "逾期填报", "已完成工作")
    by_code = {r[0]: r for r in rows[1:]}
    assert len(by_code) == 12
    assert by_code["01.1.3"][7:] == (
        "01.1.3 已完成集体备课 4 次，形成教案集。",
        "https://example.org/evidence/01.1.3\n附件：推进情况.pdf",
        "青年教师参与度不高",
        "下学期开展示范课评比",
        "需整改",
        "示范课不足 4 节",
    )
    assert by_code["01.1.2"][5:8] == ("未填报", None, None) and by_code["01.1.2"][11] == "需整改"
    assert [r[0] for r in wb["未填报"].iter_rows(min_row=2, values_only=True)] == [
        "01.1.2",
        "01.1.4",
        "01.2.1",
        "01.2.3",
        "01.2.4",
        "01.3.1",
        "01.3.2",
        "01.3.3",
        "01.3.4",
    ]
    assert list(wb["整改事项"].iter_rows(min_row=2, values_only=True)) == [
        ("01.1.2", "开展集体备课和教学骨干传帮带", "督查整改：补报集体备课记录", "马克思主义学院院长", "2027-01-08", "逾期未报"),
        (
            "01.1.3",
            "加强“四史”教育并建设思政课精彩课程资源库",
            "督查整改：补充组织示范课 2 节",
            "马克思主义学院院长",
            "2027-01-15",
            "示范课不足 4 节",
        ),
    ]
    esc = list(wb["督办记录"].iter_rows(min_row=2, values_only=True))
    assert ("2026-12-09", "01.2.1", "教务处教学科科长", "部门负责人", "教务处处长") in esc
    assert ("2026-12-15", "01.2.1", "教务处教学科科长", "分管校领导", "分管教学副校长") in esc
    html = html_path.read_text(encoding="utf-8")
    assert "督查报告：课程育人专项督查" in html and "马克思主义学院思政课教研室主任" in html and "补充组织示范课 2 节" in html
    assert re.search(r'<script|src="http', html) is None  # self-contained
    # sent to the leading group and the office (7 + 3 people), each with a link to the report
    readers = ledger(engine, "review_report")
    assert len(readers) == 10 and ("党委书记", "", 0) in readers
    assert "督查报告已生成：12 项任务，已填报 3 项，未填报 9 项，需整改 2 项" in outbox_text(dt.date(2026, 12, 16), "党委书记")
    # the follow-up owner was told, with links for the new step; the task page shows the review history
    assert ("马克思主义学院院长", "01.1.3", 0) in ledger(engine, "review_follow_up")
    with session_scope(engine) as s:
        from duban.web.pages import task_page

        page = task_page(s, s.scalar(select(Task).where(Task.code == "01.1.3")), today=dt.date(2026, 12, 16), tz=TZ)
    assert [(r["review"], r["verdict"], r["follow_up"]) for r in page.reviews] == [
        ("课程育人专项督查", "需整改", "督查整改：补充组织示范课 2 节（2027-01-15）")
    ]
    # the answer links are void now
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        gone = client.get(answer_url(engine, live_server, "01.1.4"))
    assert gone.status_code == 410 and "督查已完成" in gone.text


# ---------------------------------------------------------------------------------------------
# Waiting survives a restart: the run is suspended (no process holds it), the serving process is
# killed, the owners answer, a new serving process picks up the resumed run, verdicts come in as
# Prefect flow input, and the run completes.


def _serve(env: dict, log: Path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "duban"), "run", "--no-web"],
        env=env,
        cwd=root,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(proc) -> None:
    import contextlib
    import os
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # no clean shutdown: as if the machine went down
    proc.wait(timeout=30)


def test_a_waiting_review_survives_a_restart_of_the_serving_process(setup, prefect_server, tmp_path):
    import os
    import uuid

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_API_URL

    from duban.cli.main import app
    from duban.models import utcnow
    from duban.orchestration import wake
    from duban.reviews import api as reviews
    from tests.flows.test_run_e2e import wait_for

    engine = setup
    api = PREFECT_API_URL.value()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    settings = get_settings()
    env.update(
        DUBAN_DEMO="1",
        DUBAN_DATABASE_URL=settings.database_url,
        DUBAN_SECRET_KEY=SECRET,
        DUBAN_DATA_DIR=str(settings.data_dir),
        PREFECT_API_URL=api,
        PREFECT_HOME=str(tmp_path / "prefect-serve"),
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    log = tmp_path / "serve.log"
    procs = [_serve(env, log)]
    try:
        with SyncPrefectClient(api) as client:
            wait_for(lambda: _deployment(client), 120, "the served review deployment")
            out = CliRunner().invoke(
                app,
                [
                    "review",
                    "start",
                    "--plan",
                    PLAN,
                    "--tasks",
                    "01.1.1,01.1.2",
                    "--reply-by",
                    "2026-12-04",
                    "--ask",
                    "请报告推进情况。",
                    "--today",
                    "2026-11-23",
                ],
            )
            assert out.exit_code == 0, out.output
            assert "已通过 Prefect 部署发起督查（2 项任务）" in out.output
            run_id = uuid.UUID(re.search(r"运行编号 ([0-9a-f-]{36})", out.output).group(1))

            def state():
                return client.read_flow_run(run_id).state

            wait_for(lambda: state().is_paused(), 120, "the review run to suspend while owners answer" + log.read_text()[-3000:])
            assert state().name == "Suspended"
            with session_scope(engine) as s:
                review = s.scalar(select(Review).where(Review.flow_run_id == str(run_id)))
                assert review.status == "open"
                review_id = review.id
            assert len(ledger(engine, "review_request")) == 2

            # the machine goes down while the run waits
            _kill(procs.pop())
            # … the owners answer in the meantime (the last answer closes the answers and wakes the run)
            with session_scope(engine) as s:
                for item in s.scalars(select(ReviewItem).where(ReviewItem.review_id == review_id).order_by(ReviewItem.id)):
                    out_ = reviews.record_answer(
                        s,
                        item,
                        person=s.get(Person, item.owner_id),
                        done="已完成",
                        problems="",
                        next_steps="继续推进",
                        urls=[],
                        files=[],
                        now=utcnow(),
                        today=dt.date(2026, 11, 24),
                    )
            assert out_.wake
            assert wake(engine, review_id) == "resumed"
            assert state().is_scheduled()  # nobody runs it yet: no serving process
            with session_scope(engine) as s:
                assert s.get(Review, review_id).status == "waiting_verdicts"

            # a new serving process picks the resumed run up; it runs again from the store and waits for verdicts
            procs.append(_serve(env, log))
            wait_for(
                lambda: state().is_paused() and state().state_details.run_input_keyset,
                120,
                "the run to wait for verdicts" + log.read_text()[-3000:],
            )
            assert ledger(engine, "review_verdicts") == [
                ("督办员（学工线）", "", 0),
                ("督办员（教学线）", "", 0),
                ("领导小组办公室主任", "", 0),
            ]
            assert len(ledger(engine, "review_request")) == 2  # nothing repeated

            # verdicts as Prefect flow input (what the Prefect UI's resume form sends)
            resumed = client.resume_flow_run(
                run_id,
                run_input={
                    "by": "督办员（教学线）",
                    "close": True,
                    "verdicts": [
                        {"task": "01.1.1", "verdict": "达标", "note": ""},
                        {
                            "task": "01.1.2",
                            "verdict": "需整改",
                            "note": "备课记录不全",
                            "follow_up_title": "补齐备课记录",
                            "follow_up_due": "2027-01-15",
                        },
                    ],
                },
            )
            assert resumed.status.value == "ACCEPT", resumed.details
            wait_for(lambda: state().is_completed(), 120, "the review run to complete" + log.read_text()[-3000:])
        with session_scope(engine) as s:
            review = s.get(Review, review_id)
            assert review.status == "closed" and Path(review.report_xlsx).is_file()
            verdicts = dict(
                s.execute(
                    select(Task.code, ReviewItem.verdict).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == review_id)
                ).all()
            )
            follow = s.execute(
                select(Milestone.title, Milestone.due_date).join(ReviewItem, ReviewItem.follow_up_milestone_id == Milestone.id)
            ).all()
        assert verdicts == {"01.1.1": "达标", "01.1.2": "需整改"}
        assert [tuple(f) for f in follow] == [("督查整改：补齐备课记录", dt.date(2027, 1, 15))]
        assert len(ledger(engine, "review_report")) == 10
    finally:
        for p in procs:
            _kill(p)


def _deployment(client):
    try:
        return client.read_deployment_by_name("review/review")
    except Exception:  # noqa: BLE001 - not served yet
        return None
