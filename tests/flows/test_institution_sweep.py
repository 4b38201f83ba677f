"""The daily sweep institution by institution (flows/institution_sweep.py, flows/sweep.py) as real
flow runs in this process: each school by its own calendar and channel, a task run named after
the school and tagged, a school swept twice sends each person one message, a school that fails
does not stop the others, and `duban check / deliver --institution`."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import time_machine
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from duban import institutions
from duban.cli.main import app
from duban.db import session_scope
from duban.runtime import runtime
from duban.settings import get_settings
from flows.deliver import deliver_due_flow
from flows.institution_sweep import IncompleteSweepError, institution_sweep
from flows.sweep import daily_sweep
from tests.factories import import_announced, small_plan, write_yaml
from tests.schools import sent_by_institution

pytestmark = pytest.mark.slow
TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
MON, TUE = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
SMALL_PLAN_PEOPLE = ["党委书记", "分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长"]  # who the small plan's sweep on MON reaches
runner = CliRunner()


def school_plan(code: str, organization: str) -> dict:
    plan = copy.deepcopy(small_plan())
    plan["plan"]["code"], plan["plan"]["organization"] = code, organization
    return plan


def set_own(engine, code: str, **values: str) -> None:
    with session_scope(engine) as session:
        institutions.set_settings(session, code, values, base=get_settings())


@pytest.fixture
def schools(prefect_server, use_database, tmp_path):
    """甲大学 (a) on the national calendar, 乙学院 (b) with its own: Monday 23 Nov is its holiday."""
    engine = runtime().engine
    import_announced(engine, write_yaml(tmp_path / "a.yaml", school_plan("a-2026", "甲大学")), now=IMPORTED, institution="a")
    import_announced(engine, write_yaml(tmp_path / "b.yaml", school_plan("b-2026", "乙学院")), now=IMPORTED, institution="b")
    calendar = tmp_path / "b-calendar.yaml"
    calendar.write_text("holidays: [2026-11-23]\n", encoding="utf-8")
    set_own(engine, "b", calendar_file=str(calendar))
    return engine


def once_each(code: str) -> Counter:
    return Counter({(code, name): 1 for name in SMALL_PLAN_PEOPLE})


def outbox_count(day: dt.date) -> int:
    folder = runtime().settings.outbox_path / day.isoformat()
    return len(list(folder.glob("*.txt"))) if folder.exists() else 0


def task_runs(flow_run_id) -> dict[str, list[str]]:
    """The task runs of a flow run: name → tags."""

    async def read():
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    return {r.name: sorted(r.tags) for r in asyncio.run(read())}


def latest_artifact(key: str):
    async def read():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    return [a for a in asyncio.run(read()) if a.key == key]


def test_each_school_is_swept_by_its_own_calendar_in_a_task_run_named_after_it(schools):
    state = daily_sweep(today=MON, return_state=True)
    monday = state.result()
    rows = {r["code"]: (r["name"], r["outcome"], r.get("digests"), r.get("sent")) for r in monday["institutions"]}
    assert rows == {"a": ("甲大学", "done", 5, 5), "b": ("乙学院", "skipped", 0, 0)}
    assert (monday["skipped"], monday["digests"], monday["sent"], monday["failed_institutions"]) == (False, 5, 5, [])
    assert sent_by_institution(schools) == once_each("a")
    named = {k: v for k, v in task_runs(state.state_details.flow_run_id).items() if not k.startswith("rollup-snapshot")}
    assert named == {"甲大学（a）": ["institution:a"], "乙学院（b）": ["institution:b"]}
    (artifact,) = latest_artifact("sweep-a")
    assert artifact.description == "甲大学 2026-11-23"
    assert "- 生成通知 5 份；发送成功 5 份，失败 0 份" in artifact.data

    tuesday = daily_sweep(today=TUE)  # b's working day: its people are reached, a's already were
    assert {r["code"]: r["outcome"] for r in tuesday["institutions"]} == {"a": "done", "b": "done"}
    assert sent_by_institution(schools)[("b", "教务处处长")] == 1


def test_a_school_swept_twice_sends_each_person_one_message(schools):
    first = institution_sweep(["a"], today=MON)
    again = institution_sweep(["a"], today=MON)  # a second child run of the same school: a retry, a second worker
    assert [(r["code"], r["digests"], r["sent"]) for r in first["institutions"]] == [("a", 5, 5)]
    assert [(r["code"], r["new"], r["digests"], r["sent"]) for r in again["institutions"]] == [("a", 0, 0, 0)]
    assert daily_sweep(today=MON)["sent"] == 0
    assert sent_by_institution(schools) == once_each("a")
    assert outbox_count(MON) == 5


def test_a_school_that_fails_is_named_and_the_others_are_swept(schools, tmp_path):
    (tmp_path / "b-calendar.yaml").write_text("holidays: [2027-02-30]\n", encoding="utf-8")  # broken after it was set
    with pytest.raises(IncompleteSweepError, match=r"以下单位的督办检查未完成：乙学院（b）（其余单位已完成）") as failed:
        daily_sweep(today=TUE)
    summary = failed.value.summary
    assert summary is not None and summary["failed_institutions"] == ["b"]
    assert sent_by_institution(schools) == once_each("a")
    (row,) = [r for r in summary["institutions"] if r["code"] == "b"]
    assert "单位日历文件" in row["note"] and "holidays" in row["note"]

    (tmp_path / "b-calendar.yaml").write_text("holidays: []\n", encoding="utf-8")  # fixed: the next run sweeps b only
    check = runner.invoke(app, ["check", "--today", TUE.isoformat()])
    assert check.exit_code == 0, check.output
    assert "2026-11-24 检查完成：应发事项 18 项（新增 9 项），生成通知 5 份，发送成功 5 份，失败 0 份。" in check.stdout
    assert sent_by_institution(schools) == once_each("a") + once_each("b")


def test_cli_check_names_the_failed_school_and_exits_4(schools, tmp_path):
    (tmp_path / "b-calendar.yaml").write_text("holidays: [2027-02-30]\n", encoding="utf-8")
    result = runner.invoke(app, ["check", "--today", TUE.isoformat()])
    assert result.exit_code == 4
    assert "2026-11-24 检查完成：应发事项 9 项（新增 9 项），生成通知 5 份，发送成功 5 份，失败 0 份。" in result.stdout
    assert result.stderr.startswith("乙学院（b）的检查未完成：")


def test_cli_check_and_deliver_for_one_institution(schools):
    only_b = runner.invoke(app, ["check", "--institution", "b", "--today", MON.isoformat()])
    assert only_b.stdout.strip() == "2026-11-23 不是工作日，未检查（可加 --force 强制检查）。"
    only_a = runner.invoke(app, ["check", "--institution", "a", "--today", MON.isoformat()])
    assert only_a.exit_code == 0, only_a.output
    assert "生成通知 5 份，发送成功 5 份，失败 0 份。" in only_a.stdout
    assert sent_by_institution(schools) == once_each("a")
    for command in (["check", "--institution", "zz"], ["deliver", "--institution", "zz"]):
        unknown = runner.invoke(app, command)
        assert (unknown.exit_code, unknown.stderr.strip()) == (2, "没有编号为“zz”的单位。已有单位：a、b")
    assert runner.invoke(app, ["deliver", "--institution", "a"]).stdout.startswith("发送成功 0 份，失败 0 份。")


def test_each_school_is_delivered_through_its_own_channel(schools, monkeypatch, smtp_server):
    """a writes to the local outbox (no channel of its own), b mails through its own relay; the
    five-minute delivery flow retries b's refused mail with b's relay."""
    monkeypatch.setenv("DUBAN_DEMO", "0")
    monkeypatch.setenv("DUBAN_SECRET_KEY", "k" * 8 + "0123456789abcdefghijklmnopqrstuv")
    get_settings.cache_clear()
    set_own(schools, "b", smtp_url=smtp_server.relay_url, calendar_file="")
    smtp_server.fail_next(5)
    with time_machine.travel(dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ), tick=True):
        swept = daily_sweep(today=MON)
    assert {r["code"]: (r["sent"], r["failed"]) for r in swept["institutions"]} == {"a": (5, 0), "b": (0, 5)}
    assert outbox_count(MON) == 5 and smtp_server.received == []
    with time_machine.travel(dt.datetime(2026, 11, 23, 8, 36, tzinfo=TZ), tick=True):
        assert deliver_due_flow()["sent"] == 5
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received) == [
        "fx@example.org", "jwc2@example.org", "jwc@example.org", "sj@example.org", "xcb@example.org",
    ]  # fmt: skip
    assert outbox_count(MON) == 5  # a's five, nothing of b's
    assert sent_by_institution(schools) == once_each("a") + once_each("b")


CALENDAR_NOTE = "2027 年的法定节假日调休安排尚未收录，已按周一至周五计算工作日；如有调休上班日，请在单位日历文件中补充。"


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        # every school's note (a calendar warning with "；" in it) is one line, whole
        ({"a": [CALENDAR_NOTE], "b": [CALENDAR_NOTE]}, [CALENDAR_NOTE]),
        # a note of some schools names them
        ({"a": [CALENDAR_NOTE, "2 份通知的渠道暂时无响应"], "b": [CALENDAR_NOTE]}, [CALENDAR_NOTE, "甲：2 份通知的渠道暂时无响应"]),
        ({"a": [], "b": []}, []),
    ],
)
def test_the_schools_notes_are_said_once_and_whole(notes, expected):
    from duban.vocabulary import SweepOutcome
    from flows.institution_sweep import NOTE_SEP
    from flows.sweep import school_notes

    names = {"a": "甲", "b": "乙"}
    rows = [{"code": c, "name": names[c], "outcome": SweepOutcome.DONE, "note": NOTE_SEP.join(n)} for c, n in notes.items()]
    assert school_notes(rows) == expected


@pytest.fixture
def three_schools(schools, tmp_path):
    """甲大学 (a) and 丙大学 (c) on the installation's settings, 乙学院 (b) with its own calendar."""
    import_announced(schools, write_yaml(tmp_path / "c.yaml", school_plan("c-2026", "丙大学")), now=IMPORTED, institution="c")
    return schools


def test_schools_without_settings_of_their_own_are_swept_in_one_task_run(three_schools):
    state = daily_sweep(today=MON, return_state=True)
    monday = state.result()
    rows = {r["code"]: (r["outcome"], r["decided"], r["new"], r["digests"], r["sent"], r["failed"]) for r in monday["institutions"]}
    assert rows == {"a": ("done", 9, 9, 5, 5, 0), "b": ("skipped", 0, 0, 0, 0, 0), "c": ("done", 9, 9, 5, 5, 0)}
    assert [r["code"] for r in monday["institutions"]] == ["a", "b", "c"]
    assert (monday["decided"], monday["digests"], monday["sent"]) == (18, 10, 10)
    named = {k: v for k, v in task_runs(state.state_details.flow_run_id).items() if not k.startswith("rollup-snapshot")}
    assert named == {"甲大学、丙大学": ["institution:a", "institution:c"], "乙学院（b）": ["institution:b"]}
    assert sent_by_institution(three_schools) == once_each("a") + once_each("c")
    again = daily_sweep(today=MON)  # the same day again: nothing more for anyone
    assert {r["code"]: (r["new"], r["digests"], r["sent"]) for r in again["institutions"] if r["code"] != "b"} == {
        "a": (0, 0, 0), "c": (0, 0, 0),
    }  # fmt: skip
    assert outbox_count(MON) == 10


def refuse_ledger_rows_of(engine, plan_code: str) -> None:
    """A fault in the store: inserting a decision of that plan fails (a trigger raises)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        plan_id = conn.execute(text("SELECT id FROM plans WHERE code = :c"), {"c": plan_code}).scalar_one()
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON notifications WHEN NEW.plan_id = {plan_id} BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                )
            )
        else:
            conn.execute(
                text(
                    f"CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.plan_id = {plan_id} THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION refuse()"))


def accept_ledger_rows(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + ("" if engine.dialect.name == "sqlite" else " ON notifications")))
        if engine.dialect.name != "sqlite":
            conn.execute(text("DROP FUNCTION refuse()"))


def test_when_the_shared_run_fails_the_schools_are_swept_one_by_one_and_the_one_at_fault_is_named(three_schools, monkeypatch):
    from flows import institution_sweep as module

    monkeypatch.setattr(module, "sweep_institution", module.sweep_institution.with_options(retries=0))  # no 5 s + 30 s waits here
    refuse_ledger_rows_of(three_schools, "c-2026")
    try:
        with pytest.raises(IncompleteSweepError, match=r"以下单位的督办检查未完成：丙大学（c）（其余单位已完成）") as failed:
            daily_sweep(today=MON, return_state=False)
    finally:
        accept_ledger_rows(three_schools)
    summary = failed.value.summary
    assert summary is not None and summary["failed_institutions"] == ["c"]
    assert {r["code"]: r["outcome"] for r in summary["institutions"]} == {"a": "done", "b": "skipped", "c": "failed"}
    (c,) = [r for r in summary["institutions"] if r["code"] == "c"]
    assert "injected fault" in c["note"]
    assert sent_by_institution(three_schools) == once_each("a")  # a's people reached once, on the second try

    retried = daily_sweep(today=MON)  # the fault gone: c's people are reached, a's are not again
    assert {r["code"]: (r["outcome"], r["sent"]) for r in retried["institutions"]} == {
        "a": ("done", 0),
        "b": ("skipped", 0),
        "c": ("done", 5),
    }
    assert sent_by_institution(three_schools) == once_each("a") + once_each("c")


@pytest.mark.parametrize(
    ("schools", "workers", "size"),
    [
        (150, 2, 75),  # two workers: a child run's batch on the other, the daily sweep's own batch on its worker
        (150, 4, 38),
        (3, 8, 1),
        (150, 1, None),  # one worker: the daily sweep sweeps every school itself
        (150, 0, None),  # the pool's workers could not be read
        (0, 4, None),
    ],
)
def test_without_a_batch_size_the_schools_are_spread_over_the_online_workers(schools, workers, size):
    from flows.sweep import spread

    assert spread(schools, workers) == size
