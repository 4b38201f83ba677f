"""Prefect at the edge: the one module of duban (with duban.prefect_server, which starts and finds
the servers) that talks to Prefect.

The domain (duban.reviews, duban.actions, duban.sweep) never imports Prefect: it takes what it
needs as arguments or callbacks (``reviews.start(..., launch=...)``).  Here are finding the API,
waking a suspended review flow run, running the review deployment, running the flows in-process
for the CLI (task check, daily sweep) and serving the deployments for `duban run`.  Prefect and
the flows are imported inside the functions: `duban check` on a non-working day loads neither.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from duban.db import session_scope
from duban.models import Department, Plan, Project, System, Task
from duban.prefect_server import configured_api_url, healthy, running_api_url, temporary_prefect_server
from duban.reviews import api as reviews
from duban.runtime import runtime
from duban.settings import Settings

log = logging.getLogger("duban.orchestration")

REVIEW_DEPLOYMENT = "review/review"  # flows/deployments.py: the review flow's deployment


# ---------------------------------------------------------------------------------------------
# Secrets kept in Prefect


def secret_block_value(name: str) -> str:
    """The value of the Prefect Secret block ``name`` (an app secret an installation keeps in Prefect
    rather than in the environment: ``DUBAN_WECOM_SECRET_BLOCK`` and the like)."""
    from notifications.apps.base import AppConfigError

    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()  # type: ignore[union-attr]
    except Exception as err:  # noqa: BLE001 - told to the office as the reason the message was not sent
        raise AppConfigError(f"无法读取 Prefect Secret 块“{name}”（{err.__class__.__name__}），请用 prefect block ls 核对其名称") from None
    return str(value)


# ---------------------------------------------------------------------------------------------
# Reviews: waking the flow run, running the deployment


def wake(engine: Engine, review_id: int) -> str:
    """Tell the review's flow run that its review moved on: ``resumed`` (it was suspended: the
    server reschedules it and a worker runs it again from the store), ``running`` (it is running or
    scheduled: it will see the store), or ``none`` (no flow run, or it cannot be reached or resumed:
    the caller advances the review in-process)."""
    run_id = reviews.next_wake_round(engine, review_id)
    if run_id is None:
        return "none"
    api = configured_api_url()
    if not api:
        return "none"
    try:
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(api) as client:
            run = client.read_flow_run(uuid.UUID(run_id))
            state = run.state
            if state is None or state.is_final():
                return "none"
            if not state.is_paused():
                return "running"
            run_input: dict[str, Any] | None = {"verdicts": []} if state.state_details.run_input_keyset else None
            response = client.resume_flow_run(uuid.UUID(run_id), run_input=run_input)
            if getattr(response, "status", None) is not None and str(response.status.value).upper() != "ACCEPT":
                log.warning("review %s: flow run %s not resumed: %s", review_id, run_id, getattr(response.details, "reason", ""))
                return "none"
            return "resumed"
    except Exception as err:  # noqa: BLE001 - the store is the truth; the caller advances in-process
        log.warning("review %s: could not reach flow run %s: %s: %s", review_id, run_id, err.__class__.__name__, err)
        return "none"


def wake_or_advance(engine: Engine, review_id: int, *, today: dt.date, reports_dir: Path) -> tuple[str, set[int]]:
    """Wake the review's flow run; when there is none to wake, advance the review here.

    Returns how (``resumed`` / ``running`` / ``inline``) and who has new ledger items (inline)."""
    how = wake(engine, review_id)
    if how != "none":
        return how, set()
    result = reviews.advance(engine, review_id, today=today, reports_dir=reports_dir)
    return "inline", result.recipients


def deployment_available() -> bool:
    """A Prefect server is configured, answers, and has the ``review`` deployment."""
    api = configured_api_url()
    if not api or not healthy(api.rstrip("/")):
        return False
    try:
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(api) as client:
            client.read_deployment_by_name(REVIEW_DEPLOYMENT)
        return True
    except Exception:  # noqa: BLE001 - no deployment: run in-process
        return False


def run_review_deployment(parameters: dict[str, Any]) -> str | None:
    """Start a run of the ``review`` deployment (not waiting for it): its id, or None when no
    Prefect server has the deployment."""
    if not deployment_available():
        return None
    from prefect.deployments import run_deployment

    flow_run = run_deployment(REVIEW_DEPLOYMENT, parameters=parameters, timeout=0)
    # run_deployment dispatches on the caller: a coroutine only in an async context, never ours
    if isinstance(flow_run, Coroutine):
        flow_run.close()
        raise RuntimeError("run_deployment returned a coroutine: run_review_deployment must be called from synchronous code")
    return str(flow_run.id)


def start_review(engine: Engine, *, local: bool = False, **request: Any) -> reviews.Started:
    """``reviews.start``, handing the review to a run of the ``review`` deployment when a Prefect
    server has one (``local``: never): the one path of ``duban review start`` and the dashboard."""
    return reviews.start(engine, launch=None if local else run_review_deployment, **request)


# ---------------------------------------------------------------------------------------------
# The daily sweep's children: batches of institutions as flow runs of a deployment on a work pool

CHILD_DEPLOYMENT = "institution-sweep/institution-sweep"  # flows/deployments.py, prefect.yaml
CHILD_WAIT = dt.timedelta(hours=3)  # a child run not finished by then counts as failed


@dataclass
class ChildRun:
    """A child flow run of the daily sweep and what it reported (its summary table's rows)."""

    id: str
    name: str
    institutions: list[str]
    state: str = ""  # the state's name once final (Completed, Failed, Crashed, …)
    message: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)


def child_deployment() -> str | None:
    """The deployment the daily sweep hands its batches to: ``institution-sweep`` when this flow
    run came from a deployment on a work pool (workers run it) and the server has the child
    deployment; None: run the institutions in this process (`duban check`, `duban run`, tests)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment

    if not deployment.id:
        return None
    try:
        with get_client(sync_client=True) as client:
            if not client.read_deployment(uuid.UUID(str(deployment.id))).work_pool_name:
                return None
            client.read_deployment_by_name(CHILD_DEPLOYMENT)
    except Exception as err:  # noqa: BLE001 - no child deployment (an older `prefect deploy`): the sweep runs here
        log.warning("daily sweep: no %s deployment (%s: %s); sweeping in this process", CHILD_DEPLOYMENT, err.__class__.__name__, err)
        return None
    return CHILD_DEPLOYMENT


def online_workers() -> int:
    """How many workers of the work pool of this flow run's deployment are alive: those whose last
    heartbeat is within three heartbeat intervals of the pool's latest (this run's own worker is
    alive, so the latest is a live one).  Measured between the heartbeats, not against a clock: the
    server's ONLINE status compares them with the clock of the process that marks workers offline,
    and a clock set apart (another machine's, a test's) made live workers look gone.  0 when the
    pool cannot be read."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment

    try:
        with get_client(sync_client=True) as client:
            pool = client.read_deployment(uuid.UUID(str(deployment.id))).work_pool_name
            workers = client.read_workers_for_work_pool(pool) if pool else []
    except Exception as err:  # noqa: BLE001 - not knowing the pool's size is no reason to stop the day's sweep
        log.warning("daily sweep: the work pool's workers could not be read (%s: %s)", err.__class__.__name__, err)
        return 0
    beats = [(w.last_heartbeat_time, w.heartbeat_interval_seconds or 30) for w in workers if w.last_heartbeat_time is not None]
    if not beats:
        return 0
    latest = max(t for t, _ in beats)
    return sum(1 for t, interval in beats if latest - t <= dt.timedelta(seconds=3 * interval))


def submit_children(deployment: str, batches: list[dict[str, Any]]) -> list[ChildRun]:
    """Start a flow run of ``deployment`` for each batch (``name``, ``tags``, ``parameters``,
    ``institutions``), not waiting: workers pick them up.  Each is linked to the calling flow run
    as a subflow; its idempotency key (the parent run, its attempt, the batch) makes a repeated
    submission of the same attempt return the run already created."""
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    parent = f"{flow_run.id or uuid.uuid4()}:{flow_run.run_count or 1}"
    runs = []
    for n, b in enumerate(batches):
        started = run_deployment(
            deployment,
            parameters=b["parameters"],
            flow_run_name=b["name"],
            tags=b["tags"],
            timeout=0,
            idempotency_key=f"{parent}:{n}",
            job_variables=b.get("job_variables") or None,
        )
        if isinstance(started, Coroutine):  # only in an async context, never ours
            started.close()
            raise RuntimeError("run_deployment returned a coroutine: submit_children must be called from synchronous code")
        runs.append(ChildRun(str(started.id), b["name"], list(b["institutions"])))
    return runs


def wait_children(runs: list[ChildRun], *, poll: float = 1.0, patience: dt.timedelta = CHILD_WAIT) -> list[ChildRun]:
    """Wait until every child run is final (or ``patience`` ran out), then read each one's
    summary table; a run that ended without one (crashed, cancelled, late) has no rows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType, FlowRunFilter, FlowRunFilterId

    if not runs:
        return runs
    by_id = {r.id: r for r in runs}
    deadline = time.monotonic() + patience.total_seconds()
    with get_client(sync_client=True) as client:
        waiting = set(by_id)
        while waiting and time.monotonic() < deadline:
            found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(i) for i in waiting])))
            for fr in found:
                if fr.state is not None and fr.state.is_final():
                    by_id[str(fr.id)].state, by_id[str(fr.id)].message = str(fr.state.name), fr.state.message or ""
                    waiting.discard(str(fr.id))
            if waiting:
                time.sleep(poll)
        for i in waiting:
            by_id[i].state, by_id[i].message = "Late", f"{patience} 内未完成"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(i) for i in by_id]), type=ArtifactFilterType(any_=["table"])
            )
        )
    for a in artifacts:
        run = by_id.get(str(a.flow_run_id))
        if run is not None and a.task_run_id is None:
            data = json.loads(a.data) if isinstance(a.data, str) else a.data
            run.rows = [r for r in data or [] if isinstance(r, dict)] if isinstance(data, list) else []
    return runs


# ---------------------------------------------------------------------------------------------
# Flows run in-process for the CLI, and the deployments `duban run` serves


class TaskNotFound(LookupError):  # noqa: N818  public name (flows.task_check re-exports it; the CLI and tests catch it)
    pass


def task_tags(task_code: str, plan: str | None) -> tuple[str, list[str]]:
    """(plan code, tags) of the task; raises TaskNotFound with a clear message."""
    rt = runtime()
    with session_scope(rt.engine, readonly=True) as s:
        q = (
            select(Plan.code, System.name, Department.name)
            .select_from(Task)
            .join(Plan, Plan.id == Task.plan_id)
            .join(Project, Project.id == Task.project_id)
            .join(System, System.id == Project.system_id)
            .outerjoin(Department, Department.id == Task.lead_department_id)
            .where(Task.code == task_code, Task.archived_at.is_(None))
        )
        if plan:
            q = q.where(Plan.code == plan)
        rows = s.execute(q).all()
    if not rows:
        raise TaskNotFound(f"没有找到编号为“{task_code}”的在办任务" + (f"（方案 {plan}）" if plan else ""))
    if len(rows) > 1:
        raise TaskNotFound(f"任务编号“{task_code}”在多个方案中出现（{'、'.join(r[0] for r in rows)}），请用 --plan 指明方案")
    code, system, department = rows[0]
    return code, [f"plan:{code}", f"system:{system}", f"department:{department or '未指定'}"]


@contextlib.contextmanager
def flow_api(settings: Settings) -> Iterator[Callable[[], None]]:
    """Where the flows of a command run: the configured Prefect server (PREFECT_API_URL), else the
    one `duban run` serves on this data folder, else a temporary server started now, in the
    background, while the command imports its flows. Call the yielded ``ready()`` (it raises
    PrefectServerError when the server does not come up) right before running a flow; enter this
    before importing Prefect or the flows."""
    with contextlib.ExitStack() as stack:
        api_url = running_api_url(settings)
        wait = (lambda: api_url) if api_url else temporary_prefect_server(settings)

        def ready() -> None:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: wait()}))

        yield ready


def run_task_check(ready: Callable[[], None], task_code: str, *, plan: str | None, today: dt.date) -> dict:
    """The ``task-check`` flow, in this process (TaskNotFound before any server is waited for)."""
    from flows.task_check import task_check

    task_tags(task_code, plan)
    ready()
    return task_check(task_code, plan=plan, today=today)


def run_daily_sweep(
    ready: Callable[[], None], *, today: dt.date, plan: str | None = None, force: bool = False, institution: str | None = None
) -> dict:
    """The ``daily-sweep`` flow, in this process (its flows imported while the server comes up);
    its summary also when some institutions failed (``failed_institutions`` names them)."""
    from flows.institution_sweep import IncompleteSweepError
    from flows.sweep import daily_sweep

    ready()
    try:
        return daily_sweep(today=today, plan=plan, force=force, institution=institution)
    except IncompleteSweepError as err:
        if err.summary is None:
            raise
        return err.summary


def serve(api_url: str, timezone: str) -> None:
    """Serve the deployments of flows/deployments.py on ``api_url`` until stopped."""
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import deployments

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        prefect_serve(*deployments(timezone))
