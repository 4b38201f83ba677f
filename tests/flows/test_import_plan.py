"""The import flow runs for real on an embedded Prefect server."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from definitions.problems import PlanProblems
from flows.import_plan import import_plan_flow
from tests.factories import small_plan, task_of, write_yaml

pytestmark = pytest.mark.slow


async def _artifacts(key):
    """Artifacts with ``key``, oldest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, TaskRunFilter
    from prefect.client.schemas.sorting import ArtifactSort

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=50,
        )
    return list(reversed(found))


def test_import_flow_preview_then_apply(prefect_server, use_database, tmp_path):
    import asyncio

    path = str(write_yaml(tmp_path / "p.yaml", small_plan()))
    preview = import_plan_flow(path, dry_run=True)
    assert preview["dry_run"] and [t["code"] for t in preview["tasks"]["added"]] == ["1", "2", "3", "4"]
    applied = import_plan_flow(path, dry_run=False, actor="协调员")
    assert [t["code"] for t in applied["tasks"]["added"]] == ["1", "2", "3", "4"]
    again = import_plan_flow(path, dry_run=True)
    assert again["tasks"]["unchanged"] == 4 and again["tasks"]["added"] == []
    latest = asyncio.run(_artifacts("import-diff"))[-1]
    assert "## 导入预览（未写入）" in latest.data and "与库中现有内容相同" in latest.data


def test_import_flow_reports_problems(prefect_server, use_database, tmp_path):
    import asyncio

    plan = small_plan()
    task_of(plan, "1")["deadline"] = "尽快"
    with pytest.raises(PlanProblems):
        import_plan_flow(str(write_yaml(tmp_path / "bad.yaml", plan)))
    (artifact,) = asyncio.run(_artifacts("import-problems"))[-1:]
    assert "## 导入未完成" in artifact.data and "完成时限“尽快”无法识别" in artifact.data


def test_prefect_client_filters_work_with_the_pinned_fastapi(prefect_server):
    """Prefect 3.8.8's client sends JSON nulls in filter bodies; FastAPI >= 0.151 rejects them."""
    import asyncio

    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(), await client.read_flows(), await client.read_deployments()

    runs, flows, deployments = asyncio.run(read())
    assert isinstance(runs, list) and isinstance(flows, list) and isinstance(deployments, list)
