"""The roll-up flows: artifacts on every run, the day's snapshot from the daily sweep, and the
督办通报 to the leading group and the office (a module of its own: the browser tests of
tests/test_report.py keep an event loop open while their module runs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from duban.rollup.trend import trend
from tests.rollup.test_rollup import AS_OF, build_scenario


@pytest.mark.slow
def test_rollup_and_bulletin_flows(prefect_server, engine, tmp_path, use_database):
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.rollup import bulletin
    from flows.rollup import rollup as rollup_flow
    from flows.sweep import daily_sweep

    build_scenario(engine, tmp_path)
    summary = rollup_flow(as_of=AS_OF, out_dir=str(tmp_path / "reports"))
    assert (summary["tasks"], summary["red"], summary["overdue_tasks"]) == (5, 2, 2)
    assert Path(summary["html"]).exists() and Path(summary["xlsx"]).exists()

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts()

    found = {a.key: a for a in asyncio.run(artifacts())}
    assert "按期完成率 25.0%" in found["rollup"].data
    assert "rollup-departments" in found

    # the daily sweep stores the day's snapshot too; then Friday's 通报
    daily_sweep(today=dt.date(2026, 11, 24), force=True)
    assert bulletin(today=dt.date(2026, 11, 26))["skipped"] is True  # a Thursday: nothing issued, nothing computed
    friday = dt.date(2026, 11, 27)
    result = bulletin(today=friday, out_dir=str(tmp_path / "reports"))
    assert (result["skipped"], result["issued"], result["bulletins"]) == (False, ["rollup 督办通报（周通报·第 1 期）"], 2)
    days = list(trend(engine)["day"])
    assert days == [AS_OF, dt.date(2026, 11, 24), friday]
    outbox = (
        tmp_path / ".duban" / "outbox" / friday.isoformat()
        if "postgresql" in str(engine.url)
        else Path(str(engine.url.database)).parent / "outbox" / friday.isoformat()
    )
    texts = [p.read_text(encoding="utf-8") for p in outbox.glob("*.txt")]
    bulletins = [t for t in texts if "督办通报（周通报·第 1 期）" in t and "单位考核排名" in t]
    assert len(bulletins) == 2, texts
    assert all("1. 教务处 " in t and "暂无到期事项，暂不计分、不排名：宣传部" in t for t in bulletins)  # 宣传部: nothing due before 11-30
    again = bulletin(today=friday)
    assert (again["skipped"], again["issued"], again["bulletins"]) == (False, [], 0)  # the same day again: nothing more
    assert bulletin(today=dt.date(2026, 11, 28))["skipped"] is True  # a Saturday
    monthly = bulletin(today=dt.date(2026, 11, 28), force=True, kind="month")
    assert monthly["issued"] == ["rollup 督办通报（月通报·第 1 期）"]
