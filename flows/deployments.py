"""The deployments `duban run` serves on one machine (prefect.yaml declares the same for a server,
on the work pool ``duban``: docs/production.md)."""

from __future__ import annotations

from prefect.schedules import Cron

SWEEP_CRON = "30 8 * * *"  # every day; the flow skips days that are not working days
DELIVER_CRON = "*/5 * * * *"  # retries, the send window opening, what a crash left: sent within 5 minutes
BULLETIN_CRON = "30 16 * * *"  # every afternoon; the flow issues only on a plan's weekly or monthly bulletin day


BULLETIN_DESCRIPTION = (
    "督办通报（每天 16:30 检查）：周通报于每周最后一个工作日、月通报于每月最后一个工作日印发（按方案设置），"
    "附本期汇总、重点逾期事项和单位考核排名，发给领导小组和领导小组办公室。"
)


INSTITUTION_SWEEP_DESCRIPTION = (
    "各单位的每日督办检查（由每日检查 daily-sweep 按批分派，不单独排程）：按各单位的校历、渠道和模板检查并发送通知；"
    "未单独设置的单位合并为一个任务运行一并检查，单独设置了校历、渠道或模板的单位各为一个以单位命名的任务运行；"
    "均带有 institution:<单位编号> 标签。"
)


def deployments(timezone: str = "Asia/Shanghai") -> list:
    from flows.deliver import deliver_due_flow
    from flows.import_plan import import_plan_flow
    from flows.institution_sweep import institution_sweep
    from flows.review import review_flow
    from flows.rollup import bulletin, rollup
    from flows.sweep import daily_sweep
    from flows.task_check import task_check

    return [
        daily_sweep.to_deployment(
            name="daily-sweep",
            schedule=Cron(SWEEP_CRON, timezone=timezone),
            description="每日督办检查：到期提醒、逾期催办、逐级督办（非工作日自动跳过）。",
            tags=["duban", "sweep"],
        ),
        institution_sweep.to_deployment(
            name="institution-sweep",
            description=INSTITUTION_SWEEP_DESCRIPTION,
            tags=["duban", "sweep"],
        ),
        deliver_due_flow.to_deployment(
            name="deliver-due",
            schedule=Cron(DELIVER_CRON, timezone=timezone),
            description="发送到期的通知（每 5 分钟）：到了重试时间的、延后到发送时段的、上次发送中断的；只发送台账中已有的通知。",
            tags=["duban", "deliver"],
        ),
        task_check.to_deployment(
            name="task-check",
            description="检查一项任务（填写任务编号），发出相关提醒或督办。",
            tags=["duban", "task-check"],
        ),
        import_plan_flow.to_deployment(
            name="import-plan",
            description="导入或预览一个方案文件（YAML / XLSX / CSV）。",
            tags=["duban", "import"],
            parameters={"dry_run": True},
        ),
        rollup.to_deployment(
            name="rollup",
            description="督办汇总：统计完成率、按期率、红黄绿灯和单位考核，生成 HTML 报告和 Excel 工作簿。",
            tags=["duban", "rollup"],
        ),
        review_flow.to_deployment(
            name="review",
            description="督查：选定范围（方案、育人体系、牵头单位、分管校领导或指定任务），通知责任人按期填报工作进展、佐证材料、存在问题和下一步计划；"
            "逾期未报逐级督办；评定（达标 / 基本达标 / 需整改）后生成督查报告报送领导小组。",
            tags=["duban", "review"],
        ),
        bulletin.to_deployment(
            name="bulletin",
            schedule=Cron(BULLETIN_CRON, timezone=timezone),
            description=BULLETIN_DESCRIPTION,
            tags=["duban", "rollup", "bulletin"],
        ),
    ]
