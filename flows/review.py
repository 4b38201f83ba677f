"""The review (督查) flow: from the office's request to the verdicts and the report.

Started from the Prefect UI (deployment ``review``, typed parameters), from ``duban review start``
or from the dashboard.  All state lives in the store (duban.reviews); this flow only orchestrates:

1. create the review (once per flow run: a re-executed run finds its review by its run id) and
   send each owner in scope one request per task (a ledger item → their normal digest, with a
   signed ``review_answer`` link);
2. **suspend** (``suspend_flow_run``: no process or worker is held while owners answer, for days)
   until the review moves on: the last answer (web) or the reply-by date (the daily sweep) resumes
   it.  Reminders and escalations of missing answers are the daily sweep's, on the deadline ladder;
3. ask the office for verdicts and suspend again, waiting for input: verdicts may be given as
   Prefect flow input (``VerdictsInput``, a form in the Prefect UI) or on the review page / CLI;
4. the office's explicit 完成评定并报送 (``close`` in the input, the review pages, ``duban review
   close``; duban.reviews.closing) writes the report (HTML + XLSX), sends it to the leading group
   and the office and closes the review; the run, resumed, finds it closed and ends.

A resumed run is rescheduled by the Prefect server and executed again *from the start* by any
worker (or ``duban run``): each step checks the store, so nothing is repeated, and a restart of
the worker while the run is suspended loses nothing.  ``duban review start`` and the dashboard start
it through ``duban.orchestration.start_review`` (the review created and its requests sent first, then a run of the
deployment with ``review_id``).  Run without a deployment (called in-process, e.g. a test or
a script), the flow stops after step 1 and the daily sweep,
the web answers and the verdicts advance the review in-process.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.models import Review, utcnow
from duban.reviews import api as reviews
from duban.runtime import runtime
from duban.vocabulary import ReviewState, ScopeKind, Verdict

SUSPEND_DAYS_AFTER_REPLY_BY = 120  # an abandoned review's run fails after this (nothing is lost: the store keeps it)


class ReviewRequest(BaseModel):
    """督查：范围、截止日期、督查要求（Prefect 界面中的运行参数）。"""

    plan: str = Field(description="方案编号，如 sanquan-yuren-2026")
    scope: ScopeKind = Field(
        ScopeKind.SYSTEM,
        description="督查范围：plan 全部任务 / system 育人体系 / department 牵头单位 / supervisor 分管校领导 / tasks 指定任务",
    )
    values: list[str] = Field(default_factory=list, description="范围取值：育人体系名称、牵头单位名称、分管校领导姓名或任务编号（可多个）")
    reply_by: dt.date = Field(description="填报截止日期")
    ask: str = Field("请报告各项任务的已完成工作、佐证材料、存在问题和下一步计划。", description="督查要求（随通知发给责任人）")
    title: str | None = Field(None, description="督查名称（缺省按范围生成）")
    started_by: str = Field("领导小组办公室", description="发起人")


class VerdictEntry(BaseModel):
    task: str = Field(description="任务编号")
    verdict: Verdict = Field(description="评定结果")
    note: str = Field("", description="评定意见（需整改时必填）")
    follow_up_title: str = Field("", description="整改事项（需整改时必填）")
    follow_up_due: dt.date | None = Field(None, description="整改完成日期（需整改时必填）")
    follow_up_owner: str = Field("", description="整改责任人姓名（缺省为任务责任人）")


class VerdictsInput(RunInput):
    """督查评定：逐项填写评定结果（也可在督查评定页面或用 duban review verdict 评定）。"""

    verdicts: list[VerdictEntry] = Field(default_factory=list, description="评定结果列表")
    by: str = Field("领导小组办公室", description="评定人")
    close: bool = Field(False, description="评定后完成评定并报送（生成督查报告并报送领导小组；此后评定不能再修改）")


@task(name="start-review", cache_policy=NO_CACHE)  # a re-executed run must run it again (the store decides)
def start_step(request: ReviewRequest, today: dt.date, flow_run_id: str | None) -> int:
    rt = runtime()
    with session_scope(rt.engine) as s:
        review = reviews.create(
            s,
            plan_code=request.plan,
            scope_kind=request.scope,
            scope_values=request.values,
            reply_by=request.reply_by,
            ask=request.ask,
            title=request.title,
            started_by=request.started_by,
            today=today,
            flow_run_id=flow_run_id,
        )
        return review.id


@task(name="advance-review", cache_policy=NO_CACHE)  # a re-executed run must run it again (the store decides)
def advance_step(review_id: int, today: dt.date) -> dict:
    rt = runtime()
    result = reviews.advance(rt.engine, review_id, today=today, reports_dir=rt.settings.data_dir / "reports")
    reviews.deliver(rt, result.recipients, today)
    return {"status": result.status, "report": result.report}


@task(name="apply-verdicts", cache_policy=NO_CACHE)  # a re-executed run must run it again (the store decides)
def verdicts_step(review_id: int, given: VerdictsInput, today: dt.date) -> list[str]:
    rt = runtime()
    problems, notify = [], set()
    for v in given.verdicts:
        try:
            with session_scope(rt.engine) as s:
                review = _review(s, review_id, for_update=True)
                out = reviews.give_verdict(
                    s,
                    review,
                    reviews.TaskVerdict(v.task, v.verdict, v.note, v.follow_up_title, v.follow_up_due, v.follow_up_owner),
                    actor=given.by,
                    now=utcnow(),
                    today=today,
                    channel="flow",
                )
                notify |= out.notify
        except reviews.ReviewError as err:
            problems.append(f"{v.task}：{err}")
            get_run_logger().warning("评定未采纳 %s：%s", v.task, err)
    if given.close and not problems:
        try:
            with session_scope(rt.engine) as s:
                reports = rt.settings.data_dir / "reports"
                out = reviews.close_review(s, review_id, actor=given.by, now=utcnow(), today=today, reports_dir=reports, channel="flow")
                notify |= out.notify
        except reviews.ReviewError as err:
            problems.append(f"完成评定并报送：{err}")
            get_run_logger().warning("未能完成评定并报送：%s", err)
    reviews.deliver(rt, notify, today)
    return problems


def _review(s: Session, review_id: int, *, for_update: bool = False) -> Review:
    review = s.get(Review, review_id, with_for_update=for_update)
    if review is None:
        raise reviews.ReviewError(f"没有编号为 {review_id} 的督查。")
    return review


def _round(review_id: int, bump: bool = False) -> int:
    rt = runtime()
    with session_scope(rt.engine) as s:
        review = _review(s, review_id, for_update=True)
        if bump:
            review.wake_round += 1
        return review.wake_round


@flow(name="review")
def review_flow(request: ReviewRequest, today: dt.date | None = None, review_id: int | None = None) -> dict:
    """督查：向范围内各任务责任人发出填报通知，等待填报（不占用进程），评定后生成督查报告并报送领导小组。"""
    rt = runtime()
    logger = get_run_logger()
    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx else None
    run_id = str(run.id) if run else None
    day = today or rt.today()
    if review_id is None:
        review_id = start_step(request, day, run_id)
    elif run_id:
        reviews.attach_flow_run(rt.engine, review_id, run_id)
    deployed = run is not None and run.deployment_id is not None
    with session_scope(rt.engine) as s:
        reply_by = _review(s, review_id).reply_by
    timeout = (
        int((dt.datetime.combine(reply_by, dt.time()) - dt.datetime.combine(rt.today(), dt.time())).total_seconds())
        + SUSPEND_DAYS_AFTER_REPLY_BY * 86400
    )
    for _ in range(100):  # each pass: one wake-up of the review
        # the real date after a resume (time moves on while suspended); a date given for the run is the earliest
        step = advance_step(review_id, max(day, rt.today()) if today is None else day)
        status = step["status"]
        if status in (ReviewState.CLOSED, ReviewState.CANCELLED):
            logger.info("督查 %s：%s", review_id, "已完成，报告已报送" if status == ReviewState.CLOSED else "已撤销")
            return {"review": review_id, "status": status, **step.get("report", {})}
        if not deployed:
            logger.info("督查 %s 已发出填报通知；未通过部署运行，后续由每日督办检查、网页填报和评定推进。", review_id)
            return {"review": review_id, "status": status}
        # keys name the stage and the wake-up round (letters, digits and dashes: they name the run's input keys too)
        key = f"{'answers' if status == ReviewState.OPEN else 'verdicts'}-{_round(review_id)}"
        if status == ReviewState.OPEN:
            logger.info("督查 %s 等待责任人填报（截止 %s），挂起运行，不占用进程", review_id, reply_by)
            suspend_flow_run(key=key, timeout=max(timeout, 3600))
        else:
            logger.info("督查 %s 等待评定：可在 Prefect 界面填写评定（恢复运行），或在督查评定页面评定", review_id)
            given = suspend_flow_run(wait_for_input=VerdictsInput, key=key, timeout=max(timeout, 3600))
            if given is not None and given.verdicts:
                for p in verdicts_step(review_id, given, max(day, rt.today())):
                    logger.warning(p)
        # reached when this suspension had fired before (the run was resumed without a new round): next round
        _round(review_id, bump=True)
    raise RuntimeError(f"督查 {review_id}：唤醒次数过多，请检查")
