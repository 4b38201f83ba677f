"""flows/deployments.py (what `duban run` serves) and prefect.yaml (what `prefect deploy --all`
creates) declare the same deployments: names, flows, schedules and time zones."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_and_prefect_yaml_agree():
    from flows.deployments import deployments

    served = {}
    for d in deployments("Asia/Shanghai"):
        crons = [(s.schedule.cron, s.schedule.timezone) for s in d.schedules or []]
        served[d.name] = (d.entrypoint.replace("\\", "/").rsplit("flows/", 1)[-1], crons)
    declared = {}
    for d in yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]:
        declared[d["name"]] = (d["entrypoint"].removeprefix("flows/"), [(s["cron"], s["timezone"]) for s in d.get("schedules", [])])
    assert served == declared
    assert declared["bulletin"] == ("rollup.py:bulletin", [("30 16 * * *", "Asia/Shanghai")])
