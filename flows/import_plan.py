"""Import (or preview) a plan definition file as a Prefect flow run.

Coordinators run the ``import-plan`` deployment from the Prefect UI with the path of the file the
office prepared; the run's markdown artifact shows the diff, or every problem found in the file.
The flow only orchestrates: validation and the store live in ``definitions`` and ``duban``.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from definitions.problems import PlanProblems
from duban.db import get_engine
from duban.plans.importer import import_plan
from duban.settings import get_settings


@task(name="apply-plan-file")
def apply_plan_file(
    path: str,
    dry_run: bool,
    actor: str,
    plan_code: str | None,
    accept: list[str] | None = None,
    accept_sheet: bool = False,
    institution: str | None = None,
) -> dict:
    tz = ZoneInfo(get_settings().timezone)
    try:
        diff = import_plan(
            get_engine(),
            path,
            dry_run=dry_run,
            actor=actor,
            plan_code=plan_code,
            accept=accept or (),
            accept_sheet=accept_sheet,
            tz=tz,
            institution=institution,
        )
    except PlanProblems as err:
        create_markdown_artifact(
            key="import-problems",
            markdown="## 导入未完成\n\n" + "\n".join(f"- {p}" for p in err.problems),
            description=f"{path}：{len(err.problems)} 处问题",
        )
        raise
    title = "导入预览（未写入）" if dry_run else "导入结果"
    create_markdown_artifact(
        key="import-diff",
        markdown=f"## {title}\n\n```\n{diff.render()}\n```",
        description=f"{diff.plan_code}：新增 {len(diff.added)}，变更 {len(diff.changed)}，归档 {len(diff.archived)}",
    )
    return {"dry_run": dry_run, **diff.to_dict()}


@flow(name="import-plan", flow_run_name="import {path}")
def import_plan_flow(
    path: str,
    dry_run: bool = False,
    actor: str = "prefect",
    plan_code: str | None = None,
    accept: list[str] | None = None,
    accept_sheet: bool = False,
    institution: str | None = None,
) -> dict:
    """导入或预览一个方案文件（YAML / XLSX / CSV）；accept（任务编号）或 accept_sheet 确认以表格为准、
    覆盖系统中已有的决定；institution 为方案所属单位编号。"""
    result = apply_plan_file(path, dry_run, actor, plan_code, accept, accept_sheet, institution)
    get_run_logger().info(
        "方案 %s：新增 %d 项，变更 %d 项，归档 %d 项",
        result["plan"],
        len(result["tasks"]["added"]),
        len(result["tasks"]["changed"]),
        len(result["tasks"]["archived"]),
    )
    return result


if __name__ == "__main__":  # python -m flows.import_plan PATH
    import sys

    import_plan_flow(sys.argv[1])
