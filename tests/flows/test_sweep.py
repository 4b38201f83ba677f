"""The daily sweep and the per-task check as real Prefect flow runs (embedded server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from duban.cli.main import app
from duban.runtime import runtime
from flows.sweep import daily_sweep
from flows.task_check import TaskNotFound, task_check
from tests.factories import import_announced, small_plan, write_yaml

pytestmark = pytest.mark.slow
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
runner = CliRunner()


@pytest.fixture
def imported(prefect_server, use_database, tmp_path):
    import_announced(runtime().engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=IMPORTED)
    return runtime()


def outbox_files(rt, day):
    folder = rt.settings.outbox_path / day
    return sorted(p.name.split("-", 1)[1] for p in folder.glob("*.txt")) if folder.exists() else []


def test_sweep_runs_on_a_working_day_and_is_idempotent(imported):
    first = daily_sweep(today=dt.date(2026, 11, 23))
    assert {k: first[k] for k in ("skipped", "decided", "new", "digests", "sent", "failed")} == {
        "skipped": False,
        "decided": 9,
        "new": 9,
        "digests": 5,
        "sent": 5,
        "failed": 0,
    }
    assert outbox_files(imported, "2026-11-23") == sorted(
        f"{n}.txt" for n in ["党委书记", "分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长"]
    )
    again = daily_sweep(today=dt.date(2026, 11, 23))
    assert (again["new"], again["digests"], again["sent"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("day", "skipped"),
    [
        ("2026-11-28", True),  # Saturday
        ("2026-10-01", True),  # National Day
        ("2026-10-10", False),  # 调休 Saturday: a working day
    ],
)
def test_sweep_skips_days_off_but_not_make_up_workdays(imported, day, skipped):
    assert daily_sweep(today=dt.date.fromisoformat(day))["skipped"] is skipped


def test_task_check_is_named_and_tagged(imported):
    result = task_check("1", today=dt.date(2026, 11, 23))
    # overdue and ack for its owner (one digest), the escalation to the owner's manager (another)
    assert (result["plan"], result["new"], result["sent"]) == ("demo", 3, 2)

    async def latest():
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
        from prefect.client.schemas.sorting import FlowRunSort

        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["check 1"])), sort=FlowRunSort.START_TIME_DESC, limit=1
            )
            return runs[0]

    run = asyncio.run(latest())
    assert run.name == "check 1"
    assert {"plan:demo", "system:课程育人", "department:教务处"} <= set(run.tags)
    with pytest.raises(TaskNotFound, match="没有找到编号为“99”的在办任务"):
        task_check("99")


def test_cli_check_outbox_and_dry_run(imported):
    preview = runner.invoke(app, ["check", "--today", "2026-11-23", "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert preview.stdout.splitlines()[0] == "2026-11-23 将发送的事项（预览，未记录、未发送）："
    assert "  - [逾期提醒] 1 集体备课：完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期" in preview.stdout
    assert preview.stdout.strip().endswith("共 9 项，5 位收件人（每人一份汇总通知）。")
    assert runner.invoke(app, ["outbox"]).stdout.strip() == "发件箱中没有符合条件的通知。"

    done = runner.invoke(app, ["check", "--today", "2026-11-23"])
    assert "2026-11-23 检查完成：应发事项 9 项（新增 9 项），生成通知 5 份，发送成功 5 份，失败 0 份。" in done.stdout
    listing = runner.invoke(app, ["outbox", "--date", "2026-11-23"]).stdout
    assert "教务处处长" in listing and "已发送" in listing
    body = runner.invoke(app, ["outbox", "--show", "1"]).stdout
    assert body.startswith("收件人：") and "您好" in body
    assert re.search(r"^查看我的全部督办事项：http\S+/me/\S+$", body, re.M), body  # the person's own page (我的督办)
    assert runner.invoke(app, ["outbox", "--failed"]).stdout.strip() == "发件箱中没有符合条件的通知。"
    again = runner.invoke(app, ["check", "--today", "2026-11-23", "--dry-run"])
    assert again.stdout.strip() == "2026-11-23：没有需要发送的提醒或督办（已发过的不会重复发送）。"
    weekend = runner.invoke(app, ["check", "--today", "2026-11-28"])
    assert weekend.stdout.strip().endswith("2026-11-28 不是工作日，未检查（可加 --force 强制检查）。")
    missing = runner.invoke(app, ["check", "--task", "99"])
    assert missing.exit_code == 1 and missing.stderr.strip() == "没有找到编号为“99”的在办任务"
