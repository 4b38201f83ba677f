"""The roll-up for the leading group, and the 督办通报 (daily 16:30 Asia/Shanghai, prefect.yaml).

``rollup``: compute (``duban.rollup``) → store the day's snapshot (the trend) → write the HTML
report and the Excel workbook (``duban.report``) → a markdown and a table artifact on the run.
``bulletin``: on a day that is some plan's weekly or monthly bulletin day (``duban.rollup.schedule``),
the same, then each due bulletin issued with its 期号 (``duban.rollup.bulletins``) to the leading
group and the office of the plan, through the outbox like every message; any other day it stops
at once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from duban import rollup as rollup_lib
from duban.rollup import header, pct
from duban.rollup.compute import compute
from duban.rollup.snapshots import snapshot
from duban.runtime import runtime

ARTIFACT_ROWS = 200


def reports_dir(out_dir: str | None) -> Path:
    """Where reports go: ``out_dir``, or ``reports/`` beside the local data (the SQLite database)."""
    return Path(out_dir) if out_dir else runtime().settings.data_dir / "reports"


@task(name="compute-rollup", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def compute_step(as_of: dt.date, plan: str | None) -> rollup_lib.Rollup:
    rt = runtime()
    r = compute(rt.engine, as_of=as_of, plan_code=plan, tz=rt.tz, cal=rt.calendar)
    for w in r.warnings:
        get_run_logger().warning(w)
    return r


@task(name="store-snapshot", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def snapshot_step(r: rollup_lib.Rollup) -> int:
    return snapshot(runtime().engine, r)


@task(name="write-report", cache_policy=NO_CACHE)
def report_step(r: rollup_lib.Rollup, out_dir: str | None) -> dict:
    from duban.report import write_report

    files = write_report(r, reports_dir(out_dir))
    return {"html": str(files.html), "xlsx": str(files.xlsx)}


def publish(r: rollup_lib.Rollup, files: dict, key: str) -> None:
    """A markdown artifact with the headline figures and a table artifact of the departments."""
    t = r.totals
    lines = [
        f"## 督办汇总 {r.title}（截至 {r.as_of.isoformat()}）",
        "",
        rollup_lib.headline(r),
        "",
        "| 指标 | 数值 |",
        "| --- | --- |",
        f"| 在办任务 | {t['tasks']} |",
        f"| 已办结任务 | {t['done_tasks']} |",
        f"| 节点完成率 | {pct(t['completion_rate'])} |",
        f"| 按期完成率 | {pct(t['on_time_rate'])} |",
        f"| 红灯 / 黄灯 / 绿灯 | {t['red']} / {t['yellow']} / {t['green']} |",
        f"| 逾期任务（逾期节点） | {t['overdue_tasks']}（{t['overdue_milestones']}） |",
        f"| {r.due_soon_days} 天内到期任务 | {t['due_soon_tasks']} |",
        f"| 待审核 | {t['awaiting_approval']} |",
        f"| 调整过完成时间的节点 | {t['slipped_milestones']} |",
        "",
    ]
    if len(r.overdue):
        lines += ["### 逾期最久、督办层级最高的事项", "", "| 任务 | 牵头单位 | 逾期工作日 | 督办情况 |", "| --- | --- | --- | --- |"]
        for o in r.overdue.head(10).itertuples():
            lines.append(f"| [{o.code}] {o.title} | {o.department} | {o.days_late} | {o.level_label} |")
        lines.append("")
    lines += [f"- 报告（HTML）：`{files['html']}`", f"- 工作簿（Excel）：`{files['xlsx']}`"]
    lines += [f"- 提示：{w}" for w in r.warnings]
    create_markdown_artifact(key=key, markdown="\n".join(lines), description=f"督办汇总 {r.as_of.isoformat()}")
    cols = ["plan", "department", "tasks", "done_tasks", "overdue_tasks", "red", "yellow", "green", "completion_rate", "on_time_rate"]
    if r.plan_code is not None:
        cols.remove("plan")
    scores = {k: (None if v != v else v) for k, v in r.assessment.set_index(["plan", "department"])["score"].to_dict().items()}
    rows = []
    for rec in r.by_department.head(ARTIFACT_ROWS).to_dict(orient="records"):
        row = {header(c): (pct(rec[c]) if c.endswith("_rate") else rec[c]) for c in cols}
        row[header("score")] = scores.get((rec["plan"], rec["department"]))
        rows.append(row)
    if rows:
        create_table_artifact(key=f"{key}-departments", table=rows, description=f"{r.as_of.isoformat()} 各牵头单位情况与考核得分")


def _run(as_of: dt.date, plan: str | None, out_dir: str | None, key: str) -> tuple[rollup_lib.Rollup, dict]:
    r = compute_step(as_of, plan)
    stored = snapshot_step(r)
    files = report_step(r, out_dir)
    publish(r, files, key)
    get_run_logger().info("%s 快照 %s 行；报告：%s、%s", rollup_lib.headline(r), stored, files["html"], files["xlsx"])
    return r, files


def _summary(r: rollup_lib.Rollup, files: dict) -> dict:
    t = r.totals
    return {
        "as_of": r.as_of.isoformat(),
        "plan": r.plan_code,
        "tasks": t["tasks"],
        "done_tasks": t["done_tasks"],
        "completion_rate": t["completion_rate"],
        "on_time_rate": t["on_time_rate"],
        "red": t["red"],
        "yellow": t["yellow"],
        "green": t["green"],
        "overdue_tasks": t["overdue_tasks"],
        **files,
    }


@flow(name="rollup", flow_run_name="rollup {as_of}")
def rollup(as_of: dt.date | None = None, plan: str | None = None, out_dir: str | None = None) -> dict:
    """督办汇总：按体系、项目、单位、分管校领导统计完成率和按期率，生成报告（HTML、Excel）并记录当日快照。"""
    day = as_of or runtime().today()
    r, files = _run(day, plan, out_dir, key="rollup")
    return _summary(r, files)


@flow(name="bulletin", flow_run_name="bulletin {today}")
def bulletin(
    today: dt.date | None = None, plan: str | None = None, out_dir: str | None = None, force: bool = False, kind: str | None = None
) -> dict:
    """督办通报：每天下午查看各方案今天是否为周通报（本周最后一个工作日）或月通报（本月最后一个工作日）的印发日，
    按方案的设置印发（期号顺延，附完成率、红黄绿灯、重点逾期事项和单位考核排名），发给领导小组和领导小组办公室。
    force：不论今天是否为印发日、本期是否已印发，按方案设置（或 kind：week / month）再印发一期。"""
    from duban.rollup.bulletins import issue_bulletins, plans_due
    from duban.sweep.sending import deliver_due

    rt = runtime()
    day = today or rt.today()
    log = get_run_logger()
    if not force and not plans_due(rt.engine, today=day, cal=rt.calendar, plan_code=plan):
        log.info("%s 不是任何方案的通报印发日（周通报为每周最后一个工作日，月通报为每月最后一个工作日）", day)
        return {"today": day.isoformat(), "skipped": True, "issued": [], "bulletins": 0}
    r, files = _run(day, plan, out_dir, key="bulletin")
    run = issue_bulletins(
        rt.engine,
        today=day,
        cal=rt.calendar,
        tz=rt.tz,
        plan_code=plan,
        kinds=[kind] if kind else None,
        scheduled=not force,
        channel=rt.channel.name,
        force=force,
        rollup=r,
    )
    for i in run.issued:
        log.info("已印发 %s %s（%s），%s 份", i.plan, i.title, i.period, len(i.queued))
    for text in run.already:
        log.info("%s 已印发，本次不再印发（可设 force 再印发一期）", text)
    for code in run.no_recipients:
        log.warning("方案 %s 的通报没有收件对象：请在方案中填写领导小组、领导小组办公室成员或其群通知地址", code)
    delivered = deliver_due(rt)
    for e in delivered.errors[:20]:
        log.error("发送失败（将稍后重试）：%s", e)
    return {
        **_summary(r, files),
        "skipped": False,
        "issued": [f"{i.plan} {i.title}" for i in run.issued],
        "bulletins": len(run.queued),
        "sent": delivered.sent,
        "failed": delivered.failed,
    }
